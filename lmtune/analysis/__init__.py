"""Analysis of finished or running studies: importance, plots, the HTML report and the final evaluation.

Each part is its own module and imports its heavy dependency (scikit-learn, plotly) only when used:
:mod:`lmtune.analysis.importance`, :mod:`lmtune.analysis.plots`, :mod:`lmtune.analysis.report`,
:mod:`lmtune.analysis.evaluate`. Nothing here writes trials.
"""
