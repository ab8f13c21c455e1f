"""Validated parameters of the BESIII-like detector response.

One pydantic model per sub-detector, gathered in :class:`DetectorConfig`. The
numbers live only in ``configs/detector/besiii.yaml``: the models below declare
the fields and their ranges and carry no default values, so a retuned YAML is
the single place a parameter changes. :func:`default_config_path` finds that
file in a source checkout or next to an installed package.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from pmse_graph.config import StrictModel, load_config
from pmse_graph.resources import config_path

DEFAULT_CONFIG_NAME = "besiii.yaml"

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]
NonNegative = Annotated[float, Field(ge=0.0)]


class Range(StrictModel):
    """A closed interval ``[low, high]`` used for uniform draws."""

    low: float
    high: float

    @model_validator(mode="after")
    def _check_order(self) -> Range:
        if self.high < self.low:
            raise ValueError(f"Expected low <= high (got low={self.low}, high={self.high})")
        return self


class MeanSigma(StrictModel):
    """Mean and standard deviation of a Gaussian draw."""

    mean: float
    sigma: NonNegative


class BeamSpotConfig(StrictModel):
    """Gaussian spread of the primary vertex around the nominal interaction point (cm).

    Set all three to 0 when the generator already smears the primary vertex.
    """

    sigma_x_cm: NonNegative
    sigma_y_cm: NonNegative
    sigma_z_cm: NonNegative


class MdcConfig(StrictModel):
    """Main drift chamber: acceptance, efficiency and helix-parameter resolution.

    The momentum resolution is ``sigma_p / p = sqrt((a p)^2 + (b / beta)^2)`` with
    ``a = sigma_p_curvature_per_gev`` (hit resolution) and ``b = sigma_p_scattering``
    (multiple scattering). Angle and vertex resolutions take the form
    ``sqrt(c^2 + (d / p)^2)``.
    """

    max_abs_cos_theta: float = Field(gt=0.0, le=1.0)
    min_pt_gev: NonNegative
    efficiency: Fraction
    max_production_radius_cm: Positive
    sigma_p_curvature_per_gev: NonNegative
    sigma_p_scattering: NonNegative
    sigma_angle_mrad: NonNegative
    sigma_angle_scattering_mrad_gev: NonNegative
    sigma_rphi_cm: NonNegative
    sigma_rphi_scattering_cm_gev: NonNegative
    sigma_z_cm: NonNegative
    sigma_z_scattering_cm_gev: NonNegative


class DedxConfig(StrictModel):
    """Specific ionisation in the MDC, in units of a minimum-ionising particle.

    The expected value is ``(ln(log_scale * (beta gamma)^2) - beta^2) / beta^2``,
    normalised to 1 at its minimum. Above the minimum the relativistic rise is capped
    at ``plateau`` (density effect).
    """

    resolution: Positive
    log_scale: float = Field(gt=1.0)
    plateau: float = Field(ge=1.0)


class TofConfig(StrictModel):
    """Time-of-flight barrel and endcaps."""

    barrel_radius_cm: Positive
    barrel_max_abs_cos_theta: Fraction
    endcap_z_cm: Positive
    endcap_min_abs_cos_theta: Fraction
    endcap_max_abs_cos_theta: Fraction
    barrel_resolution_ps: Positive
    endcap_resolution_ps: Positive


class HypothesisWeights(StrictModel):
    """One non-negative weight per mass hypothesis (e, mu, pi, K, p)."""

    e: NonNegative
    mu: NonNegative
    pi: NonNegative
    K: NonNegative
    p: NonNegative

    @model_validator(mode="after")
    def _check_not_all_zero(self) -> HypothesisWeights:
        if sum(self.as_tuple()) <= 0.0:
            raise ValueError("Expected at least one positive hypothesis weight (got all zero)")
        return self

    def as_tuple(self) -> tuple[float, float, float, float, float]:
        return (self.e, self.mu, self.pi, self.K, self.p)


class PidConfig(StrictModel):
    """Particle identification from dE/dx and TOF.

    ``prior`` multiplies the likelihoods before they are normalised into the
    ``pid_prob_*`` probabilities; all ones gives pure likelihood ratios.
    """

    dedx: DedxConfig
    tof: TofConfig
    prior: HypothesisWeights


class EmcResolutionConfig(StrictModel):
    """Energy and position resolution of one EMC part.

    ``sigma_E / E = sqrt((stochastic / sqrt(E))^2 + constant^2)`` (E in GeV) and
    ``sigma_pos = sqrt((position_cm_at_1gev / sqrt(E))^2 + position_constant_cm^2)``.
    """

    stochastic: NonNegative
    constant: NonNegative
    position_cm_at_1gev: NonNegative
    position_constant_cm: NonNegative


class MipConfig(StrictModel):
    """Energy of a minimum-ionising passage through the 28 cm crystals (Landau-like, GeV)."""

    most_probable_gev: Positive
    width_gev: Positive
    max_gev: Positive


class ShowerShapeConfig(StrictModel):
    """Lateral energy sharing of one shower class, from which the BOSS variables follow.

    ``seed_fraction``, ``e3x3_fraction`` and ``e5x5_fraction`` are the shares of the
    cluster energy in the seed crystal, the 3x3 and the 5x5 arrays.
    ``second_crystal_share`` is the share of the 3x3 ring's energy in the most
    energetic neighbour. The number of crystals is ``1 + Poisson(num_hits_base +
    num_hits_per_log_energy * ln(E / 20 MeV))``, capped at ``max_num_hits``.
    """

    seed_fraction: MeanSigma
    e3x3_fraction: MeanSigma
    e5x5_fraction: MeanSigma
    second_crystal_share: Range
    num_hits_base: NonNegative
    num_hits_per_log_energy: NonNegative
    max_num_hits: int = Field(ge=1)


class SplitOffConfig(StrictModel):
    """Extra neutral clusters split off hadronic showers of charged tracks."""

    mean_count: NonNegative
    energy_fraction: Range
    max_total_fraction: Fraction
    angle_sigma_deg: Positive


class NoiseConfig(StrictModel):
    """Clusters from beam background and electronics noise, not related to the event's particles.

    Each event gets ``Poisson(mean_count)`` of them, uniform in cos(theta) over the
    EMC and in phi, with energy ``cluster_threshold + Exponential(energy_scale_gev)``
    and time uniform in ``[0, max_time)`` (50 ns units), so part of them falls
    outside the good-photon time window.
    """

    mean_count: NonNegative
    energy_scale_gev: Positive
    max_time: Positive


class EmcConfig(StrictModel):
    """Electromagnetic calorimeter: geometry, resolutions and the response per particle type."""

    barrel_radius_cm: Positive
    endcap_z_cm: Positive
    barrel_max_abs_cos_theta: Fraction
    endcap_min_abs_cos_theta: Fraction
    endcap_max_abs_cos_theta: Fraction
    crystal_size_cm: Positive
    cluster_threshold_gev: NonNegative
    merge_angle_deg: NonNegative
    barrel: EmcResolutionConfig
    endcap: EmcResolutionConfig
    gap_energy_scale: Fraction
    electron_energy_scale: Positive
    mip: MipConfig
    hadron_interaction_probability: Fraction
    hadron_eop: Range
    hadron_eop_beta: tuple[float, float]
    proton_kinetic_fraction: Range
    antinucleon_annihilation_fraction: Range
    neutral_hadron_interaction_probability: Fraction
    neutral_hadron_kinetic_fraction: Range
    shape_em: ShowerShapeConfig
    shape_mip: ShowerShapeConfig
    shape_hadronic: ShowerShapeConfig
    time: MeanSigma
    split_off: SplitOffConfig
    noise: NoiseConfig


class MucConfig(StrictModel):
    """Muon counter: iron absorber layers and RPC response."""

    max_abs_cos_theta: Fraction
    barrel_max_abs_cos_theta: Fraction
    muon_min_momentum_gev: Positive
    iron_thickness_cm: list[float] = Field(min_length=1)
    muon_loss_gev_per_cm: Positive
    layer_efficiency: Fraction
    extra_hits_mean: NonNegative
    punch_through_probability: Fraction
    punch_through_min_momentum_gev: Positive
    punch_through_mean_layers: Positive
    hadron_chisq_scale: Positive


class GoodChargedConfig(StrictModel):
    """Good charged-track selection."""

    max_abs_vz_cm: Positive
    max_vr_cm: Positive
    max_abs_cos_theta: Fraction


class GoodPhotonConfig(StrictModel):
    """Good photon selection on neutral showers."""

    barrel_max_abs_cos_theta: Fraction
    barrel_min_energy_gev: NonNegative
    endcap_min_abs_cos_theta: Fraction
    endcap_max_abs_cos_theta: Fraction
    endcap_min_energy_gev: NonNegative
    min_time: float
    max_time: float
    min_angle_to_track_deg: NonNegative


class SelectionConfig(StrictModel):
    good_charged: GoodChargedConfig
    good_photon: GoodPhotonConfig


class DetectorConfig(StrictModel):
    """Every parameter of the BESIII-like detector response."""

    solenoid_field_tesla: Positive
    beam_spot: BeamSpotConfig
    mdc: MdcConfig
    pid: PidConfig
    emc: EmcConfig
    muc: MucConfig
    selection: SelectionConfig


def default_config_path() -> Path:
    """Return the path of the default ``configs/detector/besiii.yaml``."""
    return config_path("detector", DEFAULT_CONFIG_NAME)


def load_detector_config(path: str | os.PathLike[str] | None = None) -> DetectorConfig:
    """Load and validate a detector YAML (``None`` = the default BESIII file)."""
    return load_config(DetectorConfig, default_config_path() if path is None else path)
