"""Summarise py-spy's collapsed stacks (`--format raw`): the share of samples in which each function
appears (inclusive) and where the samples end (exclusive).

    .venv/bin/python bench/stacks.py stacks.txt [--top 40] [--match handlers]
"""

import argparse
import collections
import re


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--match", default="", help="only frames whose text contains this")
    args = parser.parse_args()
    inclusive, exclusive, total = collections.Counter(), collections.Counter(), 0
    for line in open(args.file):
        stack, _, count = line.rstrip().rpartition(" ")
        if not count.isdigit():
            continue
        count = int(count)
        frames = [re.sub(r" \(/.*/(site-packages|h10b|python3\.\d+)/", " (", f) for f in stack.split(";")]
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        exclusive[frames[-1]] += count
    print(f"{total} samples\n-- inclusive")
    for frame, count in inclusive.most_common():
        if args.match in frame:
            print(f"{count / total:6.1%}  {frame}")
            args.top -= 1
            if args.top <= 0:
                break
    print("-- exclusive (top 25)")
    for frame, count in exclusive.most_common(25):
        print(f"{count / total:6.1%}  {frame}")


if __name__ == "__main__":
    main()
