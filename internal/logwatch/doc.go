// Package logwatch is where the guard's lines come from: log files followed
// through rotation, the systemd journal through journalctl, and events
// pushed in-process.
//
// Every source implements [Source]: Run delivers lines in batches to a
// [Handler] and stops when its context is cancelled. A batch is
// acknowledged by the handler returning nil; only then does the source
// record the position of the batch's last line in its [Store]. Delivery is
// therefore at least once: a crash between a handler's return and the next
// Save re-delivers at most the batches acknowledged since the last Save
// (SaveInterval, one second by default), never skips one. A consumer that
// needs exactly once saves [Line.Pos] in the same transaction as the
// batch's effects and gives the source that store.
//
// Buffers are reused: a batch, the Text of its lines and their Fields are
// valid only until the handler returns. Copy what must outlive the call.
package logwatch
