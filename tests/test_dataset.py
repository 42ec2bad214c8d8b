from collections import Counter

from core.dataset import class_counts, grouped_split, labelled_samples, patient_id


def test_patient_ids_follow_the_kermany_file_names():
    assert patient_id("x/PNEUMONIA/person1199_bacteria_3149.jpeg") == "person1199"
    assert patient_id("x/PNEUMONIA/person22_virus_55.jpeg") == "person22"
    assert patient_id("x/NORMAL/IM-0115-0001.jpeg") == "IM-0115"
    assert patient_id("x/NORMAL/NORMAL2-IM-0381-0001.jpeg") == "NORMAL2-IM-0381"
    assert patient_id("x/NORMAL/whatever.png") == "file:x/NORMAL/whatever"
    assert patient_id("a.dcm", dicom_patient="12345") == "dicom:12345"


def test_labelled_samples_reads_the_whole_training_part(train_dir):
    samples = labelled_samples(train_dir)
    assert class_counts(samples) == {"NORMAL": 1341, "PNEUMONIA": 3875}


def test_validation_split_keeps_every_patient_on_one_side(train_dir):
    samples = labelled_samples(train_dir)
    train, val = grouped_split(samples, val_fraction=0.15, seed=0)
    assert len(train) + len(val) == len(samples)
    assert not {s.patient for s in train} & {s.patient for s in val}
    # Patients with several images exist, so grouping is doing real work.
    assert max(Counter(s.patient for s in samples).values()) > 3
    assert 0.10 < len(val) / len(samples) < 0.20
    # Stratified: the class mix on both sides is close to the whole set's.
    share = lambda part: class_counts(part)["PNEUMONIA"] / len(part)
    assert abs(share(val) - share(samples)) < 0.03


def test_split_is_reproducible_and_seed_dependent(train_dir):
    samples = labelled_samples(train_dir)[::5]
    a = {s.path for s in grouped_split(samples, 0.2, seed=1)[1]}
    b = {s.path for s in grouped_split(samples, 0.2, seed=1)[1]}
    c = {s.path for s in grouped_split(samples, 0.2, seed=2)[1]}
    assert a == b and a != c
