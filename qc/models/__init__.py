"""Models of the `qc` app: specifications, samples, results, OOS, certification."""

from qc.models.certification import (
    Alert,
    Certification,
    CertificationDecision,
    CertificationKind,
    NotificationEmail,
)
from qc.models.documents import BatchRecordDocument, DocumentPurpose, DocumentStatus
from qc.models.results import (
    OosInvestigation,
    OosPhase1Conclusion,
    OosStatus,
    ResultEvaluation,
    ResultStatus,
    Sample,
    TestResult,
)
from qc.models.specifications import (
    BatchSpecification,
    LimitType,
    QualitativeResult,
    Specification,
    SpecStatus,
    TestDefinition,
)

__all__ = [
    "Alert", "BatchRecordDocument", "BatchSpecification", "Certification", "CertificationDecision",
    "CertificationKind", "DocumentPurpose", "DocumentStatus", "LimitType", "NotificationEmail",
    "OosInvestigation", "OosPhase1Conclusion", "OosStatus", "QualitativeResult", "ResultEvaluation", "ResultStatus",
    "Sample", "SpecStatus", "Specification", "TestDefinition", "TestResult",
]
