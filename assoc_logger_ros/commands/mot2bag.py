r"""Convert a MOTChallenge sequence into a rosbag2 bag of vision_msgs/Detection2DArray.

One message per frame on /detections, stamped frame / frameRate seconds (bag time = stamp), boxes
and scores from the detection file, class_id '0'. With --with-gt the evaluation's ground truth
(gt/gt.txt rows with conf 1 and class 1) goes to /gt, one Detection2D per person whose id is the
identity; `replay` turns it into det_gt_ids (IoU >= 0.5).

Example:
  python -m assoc_logger_ros mot2bag MOT17/train/MOT17-04 \
      --det MOT17/train/MOT17-04/det/yolox_x_ablation.txt --out mot17_04_bag --with-gt
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``mot2bag``."""
    parser.add_argument('seq_dir', metavar='SEQ_DIR', help='sequence folder with seqinfo.ini')
    parser.add_argument('--det', required=True, metavar='DET_FILE',
                        help='detections: frame,id,x,y,w,h,score,... per line')
    parser.add_argument('--out', required=True, metavar='BAG',
                        help='bag directory to create (must not exist)')
    parser.add_argument('--with-gt', action='store_true',
                        help='also write SEQ_DIR/gt/gt.txt identities to /gt')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap',
                        help='rosbag2 storage plugin (default mcap, the ROS 2 default since '
                        'Iron)')
    parser.add_argument('--first-frame', type=int, default=1, metavar='N',
                        help='first frame (1-based, default 1)')
    parser.add_argument('--last-frame', type=int, default=None, metavar='N',
                        help='last frame (default: seqLength)')


def run(args: argparse.Namespace) -> int:
    """Write the bag; 0 on success, 1 on an error."""
    from pathlib import Path
    import sys

    from assoc_logger_ros.bag.bagio import write_mot_sequence

    out = Path(args.out)
    if out.exists():
        print(f'ERROR: {out} exists; refusing to overwrite', file=sys.stderr)
        return 1
    try:
        counts = write_mot_sequence(args.seq_dir, args.det, out, storage=args.storage,
                                    with_gt=args.with_gt, first_frame=args.first_frame,
                                    last_frame=args.last_frame)
    except (ValueError, OSError) as err:
        print(f'ERROR: {err}', file=sys.stderr)
        return 1
    gt = f', {counts["gt_rows"]} ground-truth boxes on /gt' if args.with_gt else ''
    print(f'wrote {out} ({args.storage}): {counts["frames"]} frames, '
          f'{counts["detections"]} detections on /detections{gt}')
    # Detection2DArray has no image size: /camera_info carries it, replay reads it
    print(f'image size {counts["width"]}x{counts["height"]} on /camera_info; replay it with: '
          f'python -m assoc_logger_ros replay {out} --log-dir DIR')
    return 0
