// Package opsview is the operator's view of the event system beneath the
// jobs: a live page of charts over the last minutes — publish and consume
// rate per topic, consumer lag per group, handler P50/P99 per group,
// retries and dead letters, broker reachability, the alerts the health
// service raised and cleared — and the JSON series behind it.
//
// A Collector is a broker hook (give it with the backends' hooks) that
// counts what this process publishes and consumes. A View samples the
// Collector and the health figures (a health service's latest report, or
// the backends' own health checks) once a Interval into a ring buffer of
// Span, serves the series at /ops/api/series and the page at /ops. The
// charts are drawn by uPlot (MIT, github.com/leeoniya/uPlot), embedded in
// the binary with its licence (static/): no CDN is needed at run time.
package opsview
