// TallyFormat: placeholder until its module lands.
