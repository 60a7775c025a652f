"""Run every benchmark and print DESIGN.md's target ratios together (``make bench``)."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# (script, arguments): the train step at the SD-shaped medium preset, whose peak memory is measured on CPU too
BENCHMARKS = [('bench_label_attributes.py',), ('bench_train_step.py', '--preset', 'medium'), ('bench_generation.py',),
              ('bench_online_transform.py',)]


def main() -> int:
    failed = 0
    for name, *arguments in BENCHMARKS:
        print(f'\n### {" ".join([name, *arguments])}', flush=True)
        proc = subprocess.run([sys.executable, os.path.join(HERE, name), *arguments], capture_output=True, text=True)
        summary = [line for line in proc.stdout.splitlines() if '->' in line or 'heap' in line or 'ratio' in line]
        print('\n'.join(summary) if proc.returncode == 0 else proc.stderr[-3000:])
        failed += proc.returncode != 0
    return failed


if __name__ == '__main__':
    sys.exit(main())
