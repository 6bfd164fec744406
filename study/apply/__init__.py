"""Applying a finished trial's model to a scan (`study denoise`): which trial and its weights (`select`), the scan in
HU (`scan`: a DICOM series or file, or `.npy` slices), the derived DICOM series (`dicom_out`), and the whole run,
written into a staging folder renamed into place at the end (`denoise`)."""
