"""Cut-based J/psi -> rho pi selection with a kinematic fit, the physics baseline of the models.

- :mod:`.kinfit`: vectorised constrained least-squares fit with Lagrange multipliers.
- :mod:`.candidates`: good tracks and photons of ntuple events with their fit errors.
- :mod:`.fits`: the 4C, 5C and veto fits over every photon combination.
- :mod:`.config`: the cuts and the tightness knob.
- :mod:`.selection`: the cut flow, the rho-band classification and the truth classes.
- :mod:`.evaluate`: precision, recall, F1, recall at 99% precision and the PR plot.
- :mod:`.run`: one run over files, writing the outputs of ``pmse-graph select``.
"""
