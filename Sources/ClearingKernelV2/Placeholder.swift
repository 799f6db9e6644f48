// ClearingKernelV2: placeholder until its module lands.
