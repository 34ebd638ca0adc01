package gateway

import (
	"context"
	"log/slog"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapLogger gives certmagic (which logs through zap) the gateway's slog
// logger, at info level and above.
func zapLogger(l *slog.Logger) *zap.Logger {
	return zap.New(&zapSlog{l: l})
}

type zapSlog struct {
	l      *slog.Logger
	fields []zapcore.Field
}

func (z *zapSlog) Enabled(lvl zapcore.Level) bool { return lvl >= zapcore.InfoLevel }

func (z *zapSlog) With(fs []zapcore.Field) zapcore.Core {
	return &zapSlog{l: z.l, fields: append(z.fields[:len(z.fields):len(z.fields)], fs...)}
}

func (z *zapSlog) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if z.Enabled(e.Level) {
		return ce.AddCore(e, z)
	}
	return ce
}

func (z *zapSlog) Write(e zapcore.Entry, fs []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range z.fields {
		f.AddTo(enc)
	}
	for _, f := range fs {
		f.AddTo(enc)
	}
	attrs := make([]slog.Attr, 0, len(enc.Fields)+1)
	if e.LoggerName != "" {
		attrs = append(attrs, slog.String("logger", e.LoggerName))
	}
	for k, v := range enc.Fields {
		attrs = append(attrs, slog.Any(k, v))
	}
	lvl := slog.LevelInfo
	switch {
	case e.Level >= zapcore.ErrorLevel:
		lvl = slog.LevelError
	case e.Level == zapcore.WarnLevel:
		lvl = slog.LevelWarn
	}
	z.l.LogAttrs(context.Background(), lvl, e.Message, attrs...)
	return nil
}

func (z *zapSlog) Sync() error { return nil }
