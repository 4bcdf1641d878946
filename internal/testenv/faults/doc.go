// Package faults tests what a real network and real servers do to a copy:
// connections cut mid-COPY, mid-index build and mid-post-data on either side,
// a half-open connection, a target restarted or out of disk. Each test runs
// the real binary through faultproxy and checks the target against the
// source row for row. It has tests only.
package faults
