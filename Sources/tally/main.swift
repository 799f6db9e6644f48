print("tally: under construction")
