"""Generated scenes: walkers, occlusions, masks, images, ground truth."""
