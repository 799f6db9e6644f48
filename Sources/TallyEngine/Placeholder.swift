// TallyEngine: placeholder until its module lands.
