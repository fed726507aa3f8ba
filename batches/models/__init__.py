"""Models of the `batches` app: chain of identity, master batch records, execution."""

from batches.models.coi import (
    ApheresisIntake,
    ContainerType,
    CustodyEvent,
    CustodyStep,
    Donation,
    Infusion,
    IntakeCriteria,
    IntakeOutcome,
    Label,
    LabelStatus,
    Order,
    OrderStatus,
    Patient,
)
from batches.models.execution import (
    ALLOWED_TRANSITIONS,
    Batch,
    BatchFailureReason,
    BatchState,
    Deviation,
    DeviationClass,
    DeviationSource,
    DeviationStatus,
    DeviationUseApproval,
    Equipment,
    EquipmentStatus,
    LimitResult,
    LotStatus,
    MaterialLot,
    StepCorrection,
    StepRecord,
    StepStatus,
)
from batches.models.intake_correction import IntakeCorrection
from batches.models.mbr import (
    MBR_TRANSITIONS,
    MasterBatchRecord,
    MbrApproval,
    MbrApprovalRole,
    MbrStatus,
    StageDefinition,
    StepDefinition,
    StepKind,
)
from batches.models.numbering import SiteCounter
from batches.models.products import Product, RegulatoryPathway, ReleaseModel

__all__ = [
    "ALLOWED_TRANSITIONS", "ApheresisIntake", "Batch", "BatchFailureReason", "BatchState", "ContainerType",
    "CustodyEvent", "CustodyStep", "Deviation", "DeviationClass", "DeviationSource", "DeviationStatus", "DeviationUseApproval", "Donation",
    "Equipment", "EquipmentStatus", "Infusion", "IntakeCorrection", "IntakeCriteria", "IntakeOutcome", "Label", "LabelStatus",
    "LimitResult", "LotStatus", "MBR_TRANSITIONS", "MasterBatchRecord", "MbrApproval", "MbrApprovalRole", "MaterialLot", "MbrStatus", "Order", "OrderStatus", "Patient",
    "Product", "RegulatoryPathway", "ReleaseModel", "StageDefinition", "StepCorrection", "StepDefinition",
    "SiteCounter", "StepKind", "StepRecord", "StepStatus",
]
