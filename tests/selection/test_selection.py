"""Tests of the cut flow, the rho-band classification and the truth classes on the generated sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pmse_graph.selection.candidates import iterate_candidates, validate_inputs
from pmse_graph.selection.config import SelectionCuts, cuts_at
from pmse_graph.selection.fits import fit_events
from pmse_graph.selection.selection import (
    CLASSES,
    NOT_SELECTED,
    OTHER,
    OVERLAP_REASON,
    STEPS,
    classify_masses,
    cut_flow,
    decide,
    step_passes,
    truth_classes,
    without_photos_photons,
)
from pmse_graph.simulation.detector.config import load_detector_config

CUTS = SelectionCuts()


STEP_NAMES = [name for name, _ in STEPS]


def fit_sample(sample, cuts: SelectionCuts) -> tuple[pd.DataFrame, np.ndarray]:
    paths = validate_inputs([str(path) for path in sample.paths])
    frame = pd.concat([fit_events(chunk, cuts=cuts) for chunk in iterate_candidates(paths, config=load_detector_config())])
    return frame.reset_index(drop=True), truth_classes(frame["tree_id"].to_numpy(), sample.topology)


def trees(frame: pd.DataFrame, sample) -> np.ndarray:
    """Decay-tree string of every event, from the sample's topology table."""
    table = pd.read_csv(sample.topology, keep_default_na=False)
    return frame["tree_id"].map(dict(zip(table["id"], table["tree"]))).to_numpy()


def passes_alone(frame: pd.DataFrame, step: str, cuts: SelectionCuts = CUTS, tightness: float = 0.5) -> np.ndarray:
    return step_passes(frame, cuts, cuts_at(cuts, tightness))[STEP_NAMES.index(step)]


@pytest.fixture(scope="module")
def fitted(rho_pi_sample) -> tuple[pd.DataFrame, np.ndarray]:
    return fit_sample(rho_pi_sample, CUTS)


@pytest.fixture(scope="module")
def fitted_without_pion_id(rho_pi_sample) -> tuple[pd.DataFrame, np.ndarray]:
    """Without the pion identification, the K+K-pi0 events reach the fits."""
    return fit_sample(rho_pi_sample, SelectionCuts(pion_id=False))


@pytest.fixture(scope="module")
def fitted_vetoes(veto_sample) -> tuple[pd.DataFrame, np.ndarray]:
    return fit_sample(veto_sample, CUTS)


@pytest.fixture(scope="module")
def fitted_signal(fitted) -> np.ndarray:
    """rho pi events of the main sample with a 4C fit below the chi2 maximum at tightness 0.5."""
    frame, truth = fitted
    return np.isin(truth, CLASSES[:3]) & (frame["chi2_4c"].to_numpy() < cuts_at(CUTS, 0.5).max_chi2)


def test_truth_classes_from_topology(fitted) -> None:
    _, truth = fitted
    shares = {name: (truth == name).mean() for name in CLASSES + (OTHER,)}

    # generated fractions: 0.22 per rho pi mode, 0.10 non-resonant, 0.24 backgrounds
    for name in CLASSES[:3]:
        assert shares[name] == pytest.approx(0.22, abs=0.03)
    assert shares["pi+ pi- pi0"] == pytest.approx(0.10, abs=0.02)
    assert shares[OTHER] == pytest.approx(0.24, abs=0.03)


def test_truth_unknown_without_topology() -> None:
    assert (truth_classes(np.array([0, 1, 2]), None) == "unknown").all()


@pytest.mark.parametrize("tightness", [0.0, 0.5, 1.0])
def test_cut_flow_adds_up(fitted, tightness: float) -> None:
    frame, _ = fitted
    decision = decide(frame, cuts=CUTS, tightness=tightness)
    flow = cut_flow(decision)
    selected = int((decision.predicted != NOT_SELECTED).sum())

    assert list(flow["step"]) == ["all events"] + [name for name, _ in STEPS]
    assert flow["remaining"].iloc[0] == len(frame)
    assert flow["failed"].sum() + flow["remaining"].iloc[-1] == len(frame)
    assert flow["remaining"].iloc[-1] == selected
    np.testing.assert_array_equal(flow["events_in"].to_numpy()[1:] - flow["failed"].to_numpy()[1:], flow["remaining"].to_numpy()[1:])
    assert (np.diff(flow["remaining"].to_numpy()) <= 0).all()
    # each failed count is the number of events given that step's reason
    for index, (_, reason) in enumerate(STEPS[:-1]):
        assert flow["failed"].iloc[index + 1] == (decision.reason == reason).sum()


def test_one_track_events_not_selected(fitted) -> None:
    frame, _ = fitted
    decision = decide(frame, cuts=CUTS, tightness=0.5)
    one_track = frame["num_good_tracks"].to_numpy() == 1

    assert one_track.sum() > 20
    assert (decision.predicted[one_track] == NOT_SELECTED).all()
    assert (decision.reason[one_track] == "not exactly two good charged tracks").all()


def test_no_photon_events_not_selected(fitted) -> None:
    frame, _ = fitted
    decision = decide(frame, cuts=CUTS, tightness=0.5)
    no_photon = (frame["num_good_photons"].to_numpy() == 0) & (frame["num_good_tracks"].to_numpy() == 2)
    no_photon &= frame["net_charge"].to_numpy() == 0

    assert no_photon.sum() > 20
    assert (decision.predicted[no_photon] == NOT_SELECTED).all()
    assert set(decision.reason[no_photon]) <= {"fewer than two good photons", "a track fails the pion identification"}
    assert np.isinf(frame["chi2_4c"].to_numpy()[no_photon]).all()


def test_selected_events_have_reason_empty(fitted) -> None:
    frame, _ = fitted
    decision = decide(frame, cuts=CUTS, tightness=0.5)
    selected = decision.predicted != NOT_SELECTED

    assert (decision.reason[selected] == "").all()
    assert (decision.reason[~selected] != "").all()
    assert np.isfinite(frame.loc[selected, ["chi2_4c", "chi2_5c", "m_pipi", "m_plus", "m_minus"]].to_numpy()).all()


def test_backgrounds_rejected(fitted) -> None:
    frame, truth = fitted
    decision = decide(frame, cuts=CUTS, tightness=0.5)
    background = truth == OTHER

    assert (decision.predicted[background] != NOT_SELECTED).mean() < 0.01


def test_tightness_trades_recall_for_precision(fitted) -> None:
    frame, truth = fitted
    loose = decide(frame, cuts=CUTS, tightness=0.0).predicted
    tight = decide(frame, cuts=CUTS, tightness=1.0).predicted
    for name in CLASSES[:3]:
        precision_loose = (truth[loose == name] == name).mean()
        precision_tight = (truth[tight == name] == name).mean()
        recall_loose = (loose[truth == name] == name).mean()
        recall_tight = (tight[truth == name] == name).mean()

        assert precision_tight > precision_loose, name
        assert recall_tight < recall_loose, name
        assert precision_loose > 0.8, name


def test_signal_masses_peak_at_rho(fitted) -> None:
    frame, truth = fitted
    column = {"pi+ rho-": "m_minus", "pi- rho+": "m_plus", "pi0 rho0": "m_pipi"}
    for name, mass in column.items():
        values = frame.loc[truth == name, mass].dropna().to_numpy()

        assert np.median(values) == pytest.approx(0.775, abs=0.03), name


def test_mass_bands_on_hand_made_events() -> None:
    tight = cuts_at(CUTS, 0.5)
    rho = CUTS.rho_mass
    far = 2.0
    frame = pd.DataFrame(
        {
            "m_minus": [rho, far, far, far, rho + 0.01, rho + tight.delta_gev + 0.01],
            "m_plus": [far, rho, far, far, rho + 0.02, far],
            "m_pipi": [far, far, rho, far, far, far],
        }
    )
    label, overlap = classify_masses(frame, CUTS, tight)

    np.testing.assert_array_equal(label, [0, 1, 2, 3, -1, -1])
    np.testing.assert_array_equal(overlap, [False, False, False, False, True, False])


def test_overlap_goes_to_nearest_band_when_loose() -> None:
    rho = CUTS.rho_mass
    frame = pd.DataFrame({"m_minus": [rho + 0.01], "m_plus": [rho + 0.02], "m_pipi": [2.0]})
    label, _ = classify_masses(frame, CUTS, cuts_at(CUTS, 0.0))

    assert label[0] == 0


def test_overlap_reason(fitted) -> None:
    frame, _ = fitted
    decision = decide(frame, cuts=CUTS, tightness=1.0)

    assert (decision.predicted[decision.reason == OVERLAP_REASON] == NOT_SELECTED).all()


def test_tightness_outside_range_raises(fitted) -> None:
    frame, _ = fitted
    with pytest.raises(ValueError, match="tightness in"):
        decide(frame, cuts=CUTS, tightness=1.5)


def test_four_c_variant_uses_pi0_window(fitted) -> None:
    frame, _ = fitted
    cuts = SelectionCuts(fit="4C")
    decision = decide(frame, cuts=cuts, tightness=0.5)
    window_step = [name for name, _ in STEPS].index("5C fit or pi0 window")
    failed_window = decision.failed_step == window_step
    m_gg = frame["m_gg"].to_numpy()[failed_window]

    assert not ((m_gg > 0.11) & (m_gg < 0.15)).any()


def test_muon_depth_cut_separates(fitted, rho_pi_sample) -> None:
    frame, truth = fitted
    table = pd.read_csv(rho_pi_sample.topology, keep_default_na=False)
    muon_ids = table.loc[table["tree"] == "J/psi --> mu+ mu-", "id"].to_numpy()
    two_tracks = frame["num_good_tracks"].to_numpy() == 2
    depth = frame["max_muc_depth"].to_numpy()
    muons = two_tracks & np.isin(frame["tree_id"].to_numpy(), muon_ids)
    rho_pi = two_tracks & np.isin(truth, CLASSES[:3])

    assert (depth[muons] > 40.0).mean() > 0.7
    assert (depth[muons] > CUTS.max_muc_depth_cm).mean() > 0.8
    assert (depth[rho_pi] == 0.0).mean() > 0.95
    assert (depth[rho_pi] > CUTS.max_muc_depth_cm).mean() < 0.01


def test_kaon_veto_rejects_kkpi0(fitted_without_pion_id, fitted, fitted_signal, rho_pi_sample) -> None:
    frame, _ = fitted_without_pion_id
    kaon = (trees(frame, rho_pi_sample) == "J/psi --> pi0 K+ K-") & np.isfinite(frame["chi2_kk"].to_numpy())
    veto = passes_alone(frame, "K+K-pi0 veto")
    signal_veto = passes_alone(fitted[0], "K+K-pi0 veto")

    assert kaon.sum() > 150
    assert (~veto[kaon]).mean() > 0.95
    assert fitted_signal.sum() > 1000
    assert signal_veto[fitted_signal].mean() > 0.99


@pytest.mark.parametrize("pion_id", [True, False])
def test_kaon_veto_fires_in_cut_flow(fitted, fitted_without_pion_id, rho_pi_sample, pion_id: bool) -> None:
    # K+K-pi0 events fail the 4C chi2 maximum as pions, so the veto must come before that cut to remove any
    frame, _ = fitted if pion_id else fitted_without_pion_id
    cuts = SelectionCuts(pion_id=pion_id)
    decision = decide(frame, cuts=cuts, tightness=0.5)
    veto = STEP_NAMES.index("K+K-pi0 veto")
    kaon = trees(frame, rho_pi_sample) == "J/psi --> pi0 K+ K-"
    reached = kaon & ((decision.failed_step < 0) | (decision.failed_step >= veto))
    removed = cut_flow(decision)["failed"].iloc[veto + 1]

    assert reached.sum() > (20 if pion_id else 200)
    assert (decision.failed_step[reached] == veto).mean() > 0.8
    assert removed >= (decision.failed_step[reached] == veto).sum()


def test_eop_veto_rejects_ee(fitted, rho_pi_sample) -> None:
    frame, truth = fitted
    two_tracks = frame["num_good_tracks"].to_numpy() == 2
    electrons = two_tracks & (trees(frame, rho_pi_sample) == "J/psi --> e+ e-")
    veto = passes_alone(frame, "e+e- veto")

    assert electrons.sum() > 150
    assert (~veto[electrons]).mean() > 0.95
    assert veto[two_tracks & np.isin(truth, CLASSES[:3])].mean() > 0.99


def test_radiative_veto_rejects_gamma_pipi(fitted_vetoes, fitted, fitted_signal, veto_sample) -> None:
    frame, _ = fitted_vetoes
    radiative = trees(frame, veto_sample) == "J/psi --> pi+ pi- gammaF"
    radiative &= np.isfinite(frame["chi2_1gamma"].to_numpy()) & np.isfinite(frame["chi2_4c"].to_numpy())

    assert radiative.sum() > 150
    assert (~passes_alone(frame, "gamma pi+pi- veto")[radiative]).mean() > 0.95
    assert passes_alone(fitted[0], "gamma pi+pi- veto")[fitted_signal].mean() > 0.95


def test_extra_photon_veto_rejects_background(fitted_vetoes, fitted, fitted_signal, veto_sample) -> None:
    frame, _ = fitted_vetoes
    extra = trees(frame, veto_sample) == "J/psi --> pi0 pi+ pi- gammaF"
    extra &= np.isfinite(frame["chi2_3gamma"].to_numpy())

    assert extra.sum() > 300
    assert (~passes_alone(frame, "extra-photon veto")[extra]).mean() > 0.7
    assert passes_alone(fitted[0], "extra-photon veto")[fitted_signal].mean() > 0.98


def test_without_photos_photons() -> None:
    assert without_photos_photons("J/psi --> pi0 rho0; rho0 --> pi+ pi- gammaf") == "J/psi --> pi0 rho0; rho0 --> pi+ pi-"
    assert without_photos_photons("J/psi --> pi0 pi+ pi- gammaf gammaf") == "J/psi --> pi0 pi+ pi-"
    # a radiative decay's photon is physics, not radiation
    assert without_photos_photons("J/psi --> pi+ pi- gammaF") == "J/psi --> pi+ pi- gammaF"


def test_photos_variants_count_as_signal(fitted_vetoes, veto_sample) -> None:
    frame, truth = fitted_vetoes
    tree = trees(frame, veto_sample)
    photos = tree == "J/psi --> pi0 rho0; rho0 --> pi+ pi- gammaf"

    assert photos.sum() > 0
    assert (truth[photos] == "pi0 rho0").all()
    assert (truth[tree == "J/psi --> pi0 rho0; rho0 --> pi+ pi-"] == "pi0 rho0").all()
    assert (truth[np.char.endswith(tree.astype(str), "gammaF")] == OTHER).all()
