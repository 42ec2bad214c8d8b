from collections import Counter

from core.training.dataset import class_counts, grouped_split, labelled_samples, patient_id


def test_patient_ids_follow_the_kermany_file_names():
    assert patient_id("x/PNEUMONIA/person1199_bacteria_3149.jpeg") == "person1199"
    assert patient_id("x/PNEUMONIA/person22_virus_55.jpeg") == "person22"
    assert patient_id("x/NORMAL/IM-0115-0001.jpeg") == "IM-0115"
    assert patient_id("x/NORMAL/NORMAL2-IM-0381-0001.jpeg") == "NORMAL2-IM-0381"
    assert patient_id("x/NORMAL/whatever.png") == "file:x/NORMAL/whatever"
    assert patient_id("a.dcm", dicom_patient="12345") == "dicom:12345"


def test_labelled_samples_reads_the_whole_training_part(train_dir, train_counts):
    samples = labelled_samples(train_dir)
    assert class_counts(samples) == train_counts  # 1,341 / 3,875 on the full data


def test_validation_split_keeps_every_patient_on_one_side(train_dir):
    samples = labelled_samples(train_dir)
    train, val = grouped_split(samples, val_fraction=0.15, seed=0)
    assert len(train) + len(val) == len(samples)
    assert not {s.patient for s in train} & {s.patient for s in val}
    # Patients with several images exist, so grouping is doing real work.
    assert max(Counter(s.patient for s in samples).values()) > 3
    assert 0.10 < len(val) / len(samples) < 0.20
    # Stratified: the class mix on both sides is close to the whole set's (within one
    # image, where the small shipped set gives a validation side of a dozen images).
    share = lambda part: class_counts(part)["PNEUMONIA"] / len(part)
    assert abs(share(val) - share(samples)) < max(0.03, 1 / len(val))


def test_split_is_reproducible_and_seed_dependent(train_dir):
    samples = labelled_samples(train_dir)[::5]
    a = {s.path for s in grouped_split(samples, 0.2, seed=1)[1]}
    b = {s.path for s in grouped_split(samples, 0.2, seed=1)[1]}
    c = {s.path for s in grouped_split(samples, 0.2, seed=2)[1]}
    assert a == b and a != c


def test_no_patient_on_both_sides_of_a_folder_with_several_images_per_patient(tmp_path):
    """Real files, Kermany names, 1-4 images per patient: the sides' patient sets are disjoint."""
    import numpy as np

    rng = np.random.default_rng(0)
    for label, prefix in (("PNEUMONIA", "person{p}_bacteria_{i}.jpeg"), ("NORMAL", "IM-{p:04d}-{i:04d}.jpeg")):
        (tmp_path / label).mkdir()
        for p in range(40):
            for i in range(1, int(rng.integers(1, 5)) + 1):
                (tmp_path / label / prefix.format(p=p + (0 if label == "PNEUMONIA" else 500), i=i)).write_bytes(b"x")
    samples = labelled_samples(tmp_path)
    per_patient = Counter(s.patient for s in samples)
    assert len(per_patient) == 80 and max(per_patient.values()) == 4  # grouping has work to do
    for seed in range(5):
        train, val = grouped_split(samples, val_fraction=0.2, seed=seed)
        train_patients = {patient_id(s.path) for s in train}
        val_patients = {patient_id(s.path) for s in val}
        assert train_patients and val_patients and not train_patients & val_patients
        # Every image of a validation patient is in validation.
        assert sum(per_patient[p] for p in val_patients) == len(val)
