"""``prelabel doctor``: what stands between a backend and Label Studio, each with its fix.

:func:`~prelabel._doctor.run.run_doctor` runs every check (the CLI command); ``/setup`` runs
the cheap subset through :class:`~prelabel._doctor.setup.SetupVerdicts`.
"""

from prelabel._doctor.report import Finding, Report
from prelabel._doctor.run import DoctorOptions, run_doctor
from prelabel._doctor.setup import SetupVerdicts

__all__ = ["DoctorOptions", "Finding", "Report", "SetupVerdicts", "run_doctor"]
