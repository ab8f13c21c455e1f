"""Tests for template sampling from a DEC table: structure, frequencies, conservation, determinism."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from pmse_graph.simulation.decay_model import DecayModel, unique_rows_fast
from pmse_graph.simulation.decfile import PHOTOS_PDG, STABLE_PDG, load_dec_file
from pmse_graph.simulation.remainder import PhotosConfig

JPSI = 443


@pytest.fixture(scope="module")
def model() -> DecayModel:
    return DecayModel.from_dec_file()


@pytest.fixture(scope="module")
def sample(model):
    ids, catalogue = model.sample(60_000, np.random.default_rng(11))
    return ids, catalogue


def direct_daughters(template) -> tuple[int, ...]:
    codes = template.pdg[template.mother == 0]
    return tuple(sorted(int(c) for c in codes if c != PHOTOS_PDG))


def test_sample_shape_and_dtype(sample):
    ids, catalogue = sample
    assert ids.shape == (60_000,)
    assert ids.dtype == np.int64
    assert ids.min() >= 0
    assert ids.max() < len(catalogue)


def test_templates_well_formed(sample, model):
    _, catalogue = sample
    for template in catalogue:
        assert template.pdg[0] == JPSI
        assert template.mother[0] == -1
        # every mother precedes its daughters
        assert np.all(template.mother[1:] < np.arange(1, len(template)))
        assert np.all(template.mother[1:] >= 0)
        assert len(template.model) == len(template)
        leaves = template.pdg[template.is_final]
        assert all(abs(int(c)) in STABLE_PDG or c == PHOTOS_PDG or int(c) in model.undecayed for c in leaves)


def test_no_unstable_leaves_in_default_table(sample):
    _, catalogue = sample
    # pi0, KS, Lambda and eta are decayed inside the templates
    for template in catalogue:
        leaves = np.abs(template.pdg[template.is_final])
        assert not np.isin(leaves, [111, 310, 3122, 221, 223]).any()


def test_charge_conserved_at_every_vertex(sample, model):
    _, catalogue = sample
    table = model._table
    for template in list(catalogue)[:2000]:
        charge = np.array([table.properties(int(c)).three_charge for c in template.pdg])
        for parent in np.unique(template.mother[1:]):
            assert charge[template.mother == parent].sum() == charge[parent]


def test_top_mode_frequencies(sample, model):
    ids, catalogue = sample
    table = model._table
    direct = [direct_daughters(catalogue[i]) for i in range(len(catalogue))]
    per_event = np.array([hash(direct[i]) for i in range(len(catalogue))])[ids]
    top = sorted(table.modes[JPSI], key=lambda m: -m.branching_fraction)[:4]
    for mode in top:
        daughters = tuple(sorted(mode.daughters))
        expected = sum(m.branching_fraction for m in table.modes[JPSI] if tuple(sorted(m.daughters)) == daughters)
        observed = np.mean(per_event == hash(daughters))
        sigma = np.sqrt(expected * (1 - expected) / ids.shape[0])
        assert abs(observed - expected) < 5 * sigma, (mode.daughters, observed, expected)


def test_remainder_fraction_in_sample(sample, model):
    ids, catalogue = sample
    from_remainder = np.array([t.model[0] == "REMAINDER" for t in catalogue])[ids]
    expected = model.remainder_fraction
    sigma = np.sqrt(expected * (1 - expected) / ids.shape[0])
    assert abs(from_remainder.mean() - expected) < 5 * sigma


def test_photos_photon_rate():
    photos = PhotosConfig(lepton_pair=0.5, charged=0.0)
    model = DecayModel.from_dec_file(photos=photos)
    ids, catalogue = model.sample(20_000, np.random.default_rng(3))
    is_ee = np.array([direct_daughters(t) == (-11, 11) for t in catalogue])[ids]
    has_photon = np.array([bool(np.any((t.pdg == PHOTOS_PDG) & (t.mother == 0))) for t in catalogue])[ids]
    assert has_photon[is_ee].mean() == pytest.approx(0.5, abs=0.08)


def test_same_seed_same_templates():
    first = DecayModel.from_dec_file()
    second = DecayModel.from_dec_file()
    ids_a, cat_a = first.sample(5_000, np.random.default_rng(5))
    ids_b, cat_b = second.sample(5_000, np.random.default_rng(5))
    np.testing.assert_array_equal(ids_a, ids_b)
    assert len(cat_a) == len(cat_b)
    for a, b in zip(cat_a, cat_b):
        np.testing.assert_array_equal(a.pdg, b.pdg)
        np.testing.assert_array_equal(a.mother, b.mother)


def test_catalogue_indices_stable_across_calls(model):
    rng = np.random.default_rng(9)
    ids_a, catalogue = model.sample(2_000, rng)
    snapshot = [catalogue[i].pdg.copy() for i in ids_a[:50]]
    model.sample(2_000, rng)
    for i, pdg in zip(ids_a[:50], snapshot):
        np.testing.assert_array_equal(catalogue[i].pdg, pdg)


def test_particle_properties(model):
    mass, width, max_dm = model.particle_properties(113)
    assert mass == pytest.approx(0.7753, abs=0.002)
    assert width == pytest.approx(0.149, abs=0.003)
    assert max_dm > 0
    assert model.particle_properties(PHOTOS_PDG) == (0.0, 0.0, 0.0)
    assert model.particle_properties(211)[1] == 0.0


def test_besiii_model_samples(shared_data):
    model = DecayModel.from_dec_file(shared_data / "decay" / "BES_DECAY_v145.DEC", on_unknown="drop")
    ids, catalogue = model.sample(5_000, np.random.default_rng(1))
    models = {name for t in catalogue for name in t.model}
    assert "J2BB1" in models or "VLL" in models
    assert model.particle_properties(223)[2] == pytest.approx(0.18)


def test_unique_rows_fast_matches_numpy():
    rows = np.random.default_rng(0).integers(-3, 4, size=(5_000, 5))
    unique, inverse = unique_rows_fast(rows)
    np.testing.assert_array_equal(unique[inverse], rows)
    assert unique.shape[0] == np.unique(rows, axis=0).shape[0]


def test_negative_count_raises(model):
    with pytest.raises(ValueError, match="num_events"):
        model.sample(-1, np.random.default_rng(0))


def test_table_cached_between_models():
    assert load_dec_file() is load_dec_file()


def test_missing_light_blocks_decay_as_in_default_table(tmp_path, caplog):
    path = tmp_path / "user.dec"
    path.write_text("Decay J/psi\n0.5 omega pi0 PHSP;\n0.5 phi eta PHSP;\nEnddecay\nEnd\n")
    with caplog.at_level(logging.WARNING, logger="pmse_graph.simulation.decay_model"):
        model = DecayModel.from_dec_file(path)
    adopted = [record for record in caplog.records if "decay as in the default table" in record.getMessage()]
    assert len(adopted) == 1
    for name in ("pi0", "omega", "phi", "eta"):
        assert name in adopted[0].getMessage()
    assert model.undecayed == set()

    indices, catalogue = model.sample(2000, np.random.default_rng(1))
    decayed = set()
    for template in (catalogue[int(i)] for i in np.unique(indices)):
        leaves = template.pdg[template.is_final]
        assert all(abs(int(code)) in STABLE_PDG or code == PHOTOS_PDG for code in leaves), template.pdg
        decayed.update(int(code) for code in template.pdg[~template.is_final])
    assert {111, 221, 223, 333} <= decayed
