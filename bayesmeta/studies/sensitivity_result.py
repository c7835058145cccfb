"""One kind of result for every sensitivity analysis: a tidy table, the fits, a plot.

A sensitivity analysis fits one model under several settings (priors, assumed
within-study correlations, ...) and often several methods. Its table has one
row per setting, method and parameter: the setting's columns, ``method``,
``parameter``, ``estimate`` (the posterior mean for Bayesian fits), ``se``,
``ci_lb``, ``ci_ub`` and, for posteriors, ``ess_bulk``, ``r_hat`` and
``divergences``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Columns every sensitivity table has after its setting columns.
ROW_COLUMNS = ["method", "parameter", "estimate", "se", "ci_lb", "ci_ub"]


def result_rows(result, method: str) -> pd.DataFrame:
    """The table rows of one fit: ``method, parameter, estimate, se, ci_lb, ci_ub`` (+ ESS, R-hat,
    divergences of a posterior)."""
    table = result.table()
    rows = table.reset_index(names="parameter").assign(method=method)
    columns = list(ROW_COLUMNS)
    idata = getattr(result, "idata", None)
    if idata is not None and "sample_stats" in idata.groups() and "diverging" in idata.sample_stats:
        rows["divergences"] = int(idata.sample_stats["diverging"].sum())
        columns += ["ess_bulk", "r_hat", "divergences"]
    return rows[columns]


@dataclass(frozen=True)
class SensitivityResult:
    """Fits of one model under several settings.

    Attributes
    ----------
    table : pandas.DataFrame
        Tidy: the setting columns (e.g. ``prior`` or ``rho``), then ``method, parameter,
        estimate, se, ci_lb, ci_ub`` (and ``ess_bulk, r_hat, divergences`` for posteriors).
    results : dict
        ``(setting label, method) -> result`` (a ModeResult, BayesResult or RobustResult).
    settings : list of str
        The setting columns of the table.
    reference : pandas.DataFrame or None
        A reference fit's table (e.g. REML), marked in :meth:`plot`.
    """

    table: pd.DataFrame
    results: dict = field(repr=False)
    settings: list
    reference: pd.DataFrame | None = None

    def summary(self, parameters=None, digits: int = 4) -> str:
        """Estimates and intervals of each parameter, one line per setting and method."""
        table = self._rows(parameters)
        keep = self.settings + ["method", "parameter", "estimate", "ci_lb", "ci_ub"]
        keep += [c for c in ("r_hat", "divergences") if c in table]
        return table[keep].round(digits).to_string(index=False)

    def __repr__(self) -> str:
        n_settings = len(self.table[self.settings].drop_duplicates())
        return f"SensitivityResult({n_settings} settings, methods {sorted(self.table.method.unique())})"

    def _rows(self, parameters) -> pd.DataFrame:
        if parameters is None:
            return self.table
        parameters = [parameters] if isinstance(parameters, str) else list(parameters)
        unknown = sorted(set(parameters) - set(self.table.parameter))
        if unknown:
            raise KeyError(f"parameters {unknown} not in the table; it has {sorted(self.table.parameter.unique())}")
        return self.table[self.table.parameter.isin(parameters)]

    def plot(self, parameters=None, axes=None):
        """Each parameter's interval under every setting (rows) and method (colours).

        The reference fit, when there is one, is drawn as a vertical line at its estimate
        with its interval shaded.

        Parameters
        ----------
        parameters : str or list of str, optional
            Table labels (default: all).
        axes : sequence of matplotlib Axes, optional

        Returns
        -------
        numpy.ndarray of matplotlib.axes.Axes
        """
        import matplotlib.pyplot as plt

        table = self._rows(parameters)
        names = list(dict.fromkeys(table.parameter))
        labels = table[self.settings].astype(str).agg(", ".join, axis=1) if len(self.settings) > 1 \
            else table[self.settings[0]].astype(str)
        table = table.assign(setting=labels.to_numpy())
        settings = list(dict.fromkeys(table.setting))
        methods = list(dict.fromkeys(table.method))
        if axes is None:
            _, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 0.9 + 0.32 * len(settings) * len(methods)),
                                   squeeze=False, sharey=True)
        axes = np.ravel(axes)
        offsets = (np.arange(len(methods)) - (len(methods) - 1) / 2) * 0.8 / max(len(methods), 1)
        for ax, name in zip(axes, names):
            part = table[table.parameter == name]
            if self.reference is not None and name in self.reference.index:
                ref = self.reference.loc[name]
                ax.axvspan(ref.ci_lb, ref.ci_ub, color="0.9", zorder=0)
                ax.axvline(ref.estimate, color="0.4", lw=1, ls="--", label="reference")
            for colour, (method, offset) in enumerate(zip(methods, offsets)):
                rows = part[part.method == method]
                y = np.array([settings.index(s) for s in rows.setting]) + offset
                ax.errorbar(rows.estimate, y, xerr=[rows.estimate - rows.ci_lb, rows.ci_ub - rows.estimate],
                            fmt="o", ms=4, color=f"C{colour}", label=method, capsize=2)
            ax.set_title(name, fontsize=9)
            ax.set_yticks(range(len(settings)), settings)
            ax.set_ylim(len(settings) - 0.5, -0.5)  # first setting on top
        axes[0].set_ylabel(", ".join(self.settings))
        axes[0].legend(fontsize=8, loc="best")
        return axes
