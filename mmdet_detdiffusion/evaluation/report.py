"""Metric tables and verdicts for people (markdown), pure python."""
from typing import Dict, List, Optional, Sequence

from mmdet_detdiffusion.evaluation import claims

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


def verdict_cell(verdict: claims.Verdict) -> str:
    """A target's verdict, in bold when missed so that a reader cannot skip it."""
    return verdict.text if verdict.met else f'**{verdict.text}**'


def gain_cell(gain: dict) -> str:
    """A paired gain (:func:`~.trainability.paired_gain`): its mean, its interval and :func:`.claims.gain`."""
    return (f'{gain["mean"]:+.3f} [{gain["low"]:+.3f}, {gain["high"]:+.3f}]: '
            f'{claims.gain(gain["low"], gain["high"]).text}')


def gain_rule(gain: dict) -> str:
    """How the gains of a report are judged, worded from one of them."""
    return (f'with its {gain["confidence"]:.0%} t interval; beyond seed noise only when '
            f'{claims.GAIN_TARGET}')


def protocol_rows(report: Dict[str, dict], *other_gains: Dict[str, dict]) -> List[List[str]]:
    """Rows ``(arm, iterations, mean ± std, per seed, gain[, gain over each other baseline])`` of a
    :func:`~.trainability.protocol_report`; ``other_gains``: ``{arm: gain}`` over other baselines."""
    rows = []
    for arm, entry in report.items():
        gains = [entry.get('gain'), *(other.get(arm) for other in other_gains)]
        rows.append([arm, str(entry['iters']), f'{entry["mean"]:.3f} ± {entry["std"]:.3f}',
                     ', '.join(f'{v:.3f}' for v in entry['seeds']),
                     *('-' if gain is None else gain_cell(gain) for gain in gains)])
    return rows
