"""Markdown table helpers shared by the report's sections."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.pvalues import format_p

MAX_ROWS = 40  # rows of a table shown in the report (the CSV has all)


def md_table(df: pd.DataFrame, floatfmt: str = "{:.4g}") -> str:
    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return floatfmt.format(v) if np.isfinite(v) else "—"
        return str(v).replace("|", "\\|")

    head = "| " + " | ".join(str(c) for c in df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def pformat(df: pd.DataFrame) -> pd.DataFrame:
    """The p-value columns (pvalue, pvalue_adj) as text for a table: '0.012', '< 0.001'."""
    return df.assign(**{c: [format_p(p) for p in df[c]] for c in ("pvalue", "pvalue_adj") if c in df})
