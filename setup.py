"""ament_python package definition for assoc_logger_ros."""

from glob import glob

from setuptools import find_packages, setup

package_name = 'assoc_logger_ros'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*', 'bench', 'training']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/config', glob('config/*.yaml')),
    ],
    install_requires=['setuptools', 'numpy', 'scipy', 'PyYAML', 'rosbags'],
    extras_require={'test': ['pytest', 'hypothesis', 'ruff'], 'report': ['matplotlib']},
    zip_safe=True,
    maintainer='assoc_logger_ros maintainers',
    maintainer_email='maintainers@assoc-logger.invalid',
    description='ByteTrack with appearance memory that records association samples.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'tracker_node = assoc_logger_ros.ros.entry:tracker_node',
            'tracker_lifecycle_node = assoc_logger_ros.ros.entry:tracker_lifecycle_node',
            'assoc_logger = assoc_logger_ros.cli:main',
        ],
    },
)
