"""Result tables → evidence. `analyse(results_dir, metrics=None) -> Evidence` computes (and writes nothing);
`write_report(evidence, out_dir)` renders. Both are contracts; neither imports torch. They are loaded on first use,
so importing one analysis module does not load the whole package."""

__all__ = ["analyse", "write_report"]


def __getattr__(name: str):
    if name == "analyse":
        from analysis.compute import analyse

        return analyse
    if name == "write_report":
        from analysis.render import write_report

        return write_report
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
