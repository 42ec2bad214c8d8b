"""Reader decisions as training labels: the wizard's "my decisions" source.

A decision becomes a label only when it means one:
- it is the newest decision on the file that is not undone, made on this same file
  (the store's file-identity check: a file changed since is left out);
- it is AGREE or DISAGREE on a NORMAL/PNEUMONIA call (unsure carries no label);
- the image was within the model's scope. A decision on an out-of-scope image (withheld,
  or screened anyway) is never a label: the model was not shown to know such images,
  and decisions stored before agree/disagree were refused on withheld rows agreed with
  a call the reader never saw.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.screening.results import NEGATIVE, POSITIVE

LABELS = (NEGATIVE, POSITIVE)


@dataclass
class DecisionLabels:
    labels: list[tuple[str, str]]  # (path, label), by path
    out_of_scope: int = 0  # decisions left out: the image is out of scope
    no_label: int = 0  # unsure, confirmed out of scope, or no call


def decision_labels(store, study_folder, files=None) -> DecisionLabels:
    """The reader's labels in `study_folder` (`files`: its images; default: every file
    with a decision recorded in that study). `store` is a core.reading.store.ResultStore."""
    paths = list(files) if files is not None else store.study_decision_paths(study_folder)
    decisions = store.image_decisions(paths)
    scope = store.scope_at_decision(decisions.values())
    out = DecisionLabels(labels=[])
    for path, decision in sorted(decisions.items()):
        if scope.get(decision.id):
            out.out_of_scope += 1
        elif decision.reader_label in LABELS:
            out.labels.append((path, decision.reader_label))
        else:
            out.no_label += 1
    return out


def decision_samples(store, study_folder) -> list[tuple[str, str]]:
    """(path, label) for every image the reader labelled in `study_folder`."""
    return decision_labels(store, study_folder).labels
