"""A mixed model over every (image, network) row, as a sensitivity check beside the image-blocked tests."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats as sps


def mixed_model(long: pd.DataFrame, value: str, group: str = "block", config: str = "configuration",
                reference: str | None = None, network: str | None = "run_key") -> dict:
    """Sensitivity check on every (image, network) row: `value ~ C(config)` with crossed random intercepts for the
    image (`group`) and the trained network (`network`, e.g. run_key), as statsmodels variance components in one
    group (REML); without a `network` column, a random intercept per image only (which treats every image × seed row
    as independent: pseudo-replicated when networks vary). Returns the Wald χ² test of the configuration effect and
    each configuration's coefficient against `reference`.
    """
    import statsmodels.formula.api as smf

    crossed = network is not None and network in long
    cols = [value, group, config] + ([network] if crossed else [])
    d = long[cols].dropna().rename(columns={value: "y", group: "g", config: "c", **({network: "n"} if crossed else {})})
    levels = sorted(d["c"].unique())
    ref = reference if reference in levels else levels[0]
    d["c"] = pd.Categorical(d["c"], categories=[ref] + [v for v in levels if v != ref])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if crossed:
                model = smf.mixedlm("y ~ c", d.assign(one=1), groups="one",
                                    vc_formula={"image": "0 + C(g)", "network": "0 + C(n)"})
            else:
                model = smf.mixedlm("y ~ c", d, groups=d["g"])
            full = model.fit(reml=True)
        except Exception as err:  # noqa: BLE001 - a singular fit is a result to report, not a crash
            return {"ok": False, "error": f"{type(err).__name__}: {err}"}
    names = [n for n in full.fe_params.index if n.startswith("c[T.")]
    b = full.fe_params[names].to_numpy()
    cov = full.cov_params().loc[names, names].to_numpy()
    try:
        wald = float(b @ np.linalg.solve(cov, b))
    except np.linalg.LinAlgError:
        wald = float("nan")
    ci = full.conf_int()
    coefs = [{"configuration": name[len("c[T."):-1], "coef": float(full.params[name]), "ci_low": float(ci.loc[name, 0]),
              "ci_high": float(ci.loc[name, 1]), "pvalue": float(full.pvalues[name])} for name in names]
    return {"ok": True, "reference": ref, "wald": wald, "df": len(names), "pvalue": float(sps.chi2.sf(wald, len(names))),
            "crossed": crossed, "converged": bool(full.converged), "n_obs": int(len(d)),
            "n_groups": int(d["g"].nunique()), "n_networks": int(d["n"].nunique()) if crossed else None,
            "coefficients": pd.DataFrame(coefs)}
