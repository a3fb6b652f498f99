// Package repocheck holds tests of the repository as a newcomer gets it: a
// fresh clone has no links and no paths into someone's home folder, and
// every configuration snippet of README.md and docs/*.md passes the checker
// of the program it configures (see snippets.go for the extractor).
package repocheck
