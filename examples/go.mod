module github.com/cosmic-horizons/events/examples

go 1.26.0

require github.com/cosmic-horizons/events v0.0.0

replace github.com/cosmic-horizons/events => ../
