"""Whole experiments, each one call: the demo report and the seed papers' ablation tables.

- `run_demo` (`avlab demo`, `make demo`): SynthAV -> fine-tuned backbone -> feature store ->
  AViS-Net, AFCV and baselines -> metrics and a report with figures.
- `run_ablation` (`avlab ablate`): the papers' tables on SynthAV over seeds, with the papers'
  own figures beside ours as other data.
"""

from avlab.experiments.ablate import PRESETS as ABLATION_PRESETS
from avlab.experiments.ablate import TABLES, AblationPreset, AblationResult, run_ablation, summarize
from avlab.experiments.demo import DEMO_PRESETS, DemoPreset, DemoResult, run_demo
from avlab.experiments.paper import PAPER, PAPER_SOURCES

__all__ = ["ABLATION_PRESETS", "DEMO_PRESETS", "PAPER", "PAPER_SOURCES", "TABLES", "AblationPreset", "AblationResult",
           "DemoPreset", "DemoResult", "run_ablation", "run_demo", "summarize"]
