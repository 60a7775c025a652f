"""Metric tables for people (markdown), pure python."""
from typing import Dict, List, Optional, Sequence

FIDELITY_COLUMNS = ('set', 'mAP', 'AP50', 'AP75', 'AR100', 'mAP / real', 'FID')


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table; cells are written with ``str``."""
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    lines += ['| ' + ' | '.join(str(cell) for cell in row) + ' |' for row in rows]
    return '\n'.join(lines)


def fidelity_rows(results: Dict[str, Dict[str, Optional[float]]]) -> List[List[str]]:
    """``FIDELITY_COLUMNS`` rows of YOLO scores per set (``results['real']`` is the reference)."""
    real_map = results['real']['mAP']
    rows = []
    for name, scores in results.items():
        ratio = f'{scores["mAP"] / real_map:.2f}' if real_map else '-'
        fid_value = scores.get('FID')
        rows.append([name, *(f'{scores[key]:.3f}' for key in ('mAP', 'AP50', 'AP75', 'AR100')), ratio,
                     '-' if fid_value is None else f'{fid_value:.2f}'])
    return rows
