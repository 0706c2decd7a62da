"""Everything that scores a trained model without training it: test-split evaluation (PxAP, CL, confusion
rates), per-image details and map galleries for reports, and the staining-robustness sweep."""
