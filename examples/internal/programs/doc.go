// Package programs holds the tests that build every reference program of
// examples/ and run it as a user would: --help says what the program does
// (not the build cache's path), and the demo's output and logs read right
// outside a terminal.
package programs
