"""Result tables → evidence. `analyse(results_dir, metrics=None) -> Evidence` computes (and writes nothing);
`write_report(evidence, out_dir)` renders. Both are contracts; neither imports torch."""

from analysis.analyse import analyse
from analysis.render import write_report

__all__ = ["analyse", "write_report"]
