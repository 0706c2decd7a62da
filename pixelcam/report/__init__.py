"""Study reports: read a study back from MLflow and render its self-contained HTML dashboard."""

from pixelcam.report.dashboard import SECTION_IDS, build_dashboard, build_sections
from pixelcam.report.records import ReportError, StudyRecords, load_records

__all__ = ["SECTION_IDS", "ReportError", "StudyRecords", "build_dashboard", "build_sections", "load_records"]
