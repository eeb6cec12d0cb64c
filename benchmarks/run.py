"""`make bench`: run every benchmark and write its markdown table to --out.

Numbers are ratios against a baseline measured in the same run; absolute times depend on the
machine, which is named at the top of each table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_beam
import bench_cache
import bench_conv_lstm
import bench_convlstm_epoch
import bench_export
import bench_extract
import bench_loader
import bench_lstm
import bench_next_frame
import bench_predict_memory
import bench_retrieval
import bench_serve
import bench_video_captioning
import bench_vqa
from common import machine

BENCHMARKS = {
    "lstm": bench_lstm,
    "conv_lstm": bench_conv_lstm,
    "convlstm_epoch": bench_convlstm_epoch,
    "loader": bench_loader,
    "cache": bench_cache,
    "beam": bench_beam,
    "video_captioning": bench_video_captioning,
    "vqa": bench_vqa,
    "retrieval": bench_retrieval,
    "next_frame": bench_next_frame,
    "predict_memory": bench_predict_memory,
    "export": bench_export,
    "extract": bench_extract,
    "serve": bench_serve,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append")
    parser.add_argument("--quick", action="store_true", help="a small grid, to check it runs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    where = machine()
    print(f"machine: {where}")
    for name in args.only or list(BENCHMARKS):
        module = BENCHMARKS[name]
        print(f"\n## {name}\n{module.HEADER}", flush=True)
        rows = module.run(quick=args.quick)
        text = f"Measured on: {where}\n\n{module.table(rows)}\n"
        suffix = "-quick" if args.quick else ""
        (args.out / f"{name}{suffix}.md").write_text(text)
    print(f"\ntables written to {args.out}/")


if __name__ == "__main__":
    main()
