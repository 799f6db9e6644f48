// TallyChaos: placeholder until its module lands.
