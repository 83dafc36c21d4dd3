"""Sample schema, atomic files and the background sample writer."""
