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
    truth_classes,
)
from pmse_graph.simulation.detector.config import load_detector_config

CUTS = SelectionCuts()


@pytest.fixture(scope="module")
def fitted(rho_pi_sample) -> tuple[pd.DataFrame, np.ndarray]:
    paths = validate_inputs([str(path) for path in rho_pi_sample.paths])
    frame = pd.concat([fit_events(chunk, cuts=CUTS) for chunk in iterate_candidates(paths, config=load_detector_config())])
    return frame.reset_index(drop=True), truth_classes(frame["tree_id"].to_numpy(), rho_pi_sample.topology)


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
