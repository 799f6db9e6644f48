// MarketGenerator: placeholder until its module lands.
