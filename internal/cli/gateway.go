package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/moat-sh/moat/internal/config"
	"github.com/moat-sh/moat/internal/gateway"
	"github.com/moat-sh/moat/internal/geo"
	"github.com/moat-sh/moat/internal/preflight"
)

func init() {
	register(command{"gateway", "gateway check|serve: check the gateway section; run the gateway alone (debugging, benchmarks)", 45, runGateway})
}

const gatewayUsage = `Usage:
  moat gateway check [-c FILE] [--geo FILE]
      validate the gateway section and load what it names (certificates,
      htpasswd files) without binding ports; exit 0 or 2
  moat gateway serve [-c FILE] [--geo FILE] [--metrics ADDR] [--log-format text|json|auto]
      run only the gateway, without the guard, firewall or alerts: for
      debugging and benchmarks. Failures (honeypots, auth, rate limits) are
      only counted in the metrics, nobody is banned: 'moat run' is the way
      to serve for real.
      SIGHUP reloads the file; SIGINT/SIGTERM stop after requests in flight.`

func runGateway(e *env, args []string) int {
	if len(args) == 0 || (args[0] != "check" && args[0] != "serve") {
		fmt.Fprintln(e.stderr, gatewayUsage)
		return ExitUsage
	}
	sub := args[0]
	f := newFlags(e, "gateway "+sub, "gateway "+sub+" [-c FILE] [--geo FILE]")
	geoPath := f.String("geo", "", "country mmdb `file` for geo policies (default: firewall.geo.database)")
	metrics := ""
	var logFormat *string
	if sub == "serve" {
		f.StringVar(&metrics, "metrics", "", "serve Prometheus metrics on `addr` (loopback or VPN only)")
		logFormat = logFormatFlag(f)
	}
	if code, ok := f.parse(args[1:]); !ok {
		return code
	}
	if logFormat != nil {
		log, err := daemonLogger(e.stderr, *logFormat)
		if err != nil {
			fmt.Fprintf(e.stderr, "moat gateway serve: %v\n", err)
			return ExitUsage
		}
		e.log = log
	}
	path := config.Path(f.config)
	// The same judgement as config check and run: same words, same exit.
	c, warnings, err := preflight.Load(path, true, preflight.Options{GeoPath: *geoPath})
	for _, w := range warnings {
		fmt.Fprintln(e.stderr, w.String())
	}
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return ExitUsage
	}
	if metrics != "" {
		if err := c.MetricsAddr(metrics); err != nil {
			fmt.Fprintf(e.stderr, "moat gateway serve: --metrics: %v\n", err)
			return ExitUsage
		}
	}
	if c.Gateway == nil {
		fmt.Fprintf(e.stderr, "moat gateway %s: %s has no gateway section\n", sub, path)
		return ExitUsage
	}
	deps, closeGeo, err := gatewayDeps(c, *geoPath)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat gateway %s: %v\n", sub, err)
		return ExitUsage
	}
	defer closeGeo()
	deps.Log = e.log
	if sub == "check" {
		if err := gateway.Check(*c.Gateway, deps); err != nil {
			fmt.Fprintln(e.stderr, err)
			return ExitUsage
		}
		fmt.Fprintf(e.stdout, "%s: gateway ok (%d sites)\n", path, len(c.Gateway.Sites))
		return ExitOK
	}
	return serveGateway(e, path, c, deps, metrics)
}

// gatewayDeps fills what moat run would give the gateway, minus the guard.
func gatewayDeps(c *config.Config, geoPath string) (gateway.Deps, func(), error) {
	deps := gateway.Deps{VPN: c.VPN.Prefixes()}
	for _, s := range c.Host.Admin.Sources {
		deps.Admin = append(deps.Admin, s.Prefix)
	}
	if geoPath == "" {
		geoPath = c.Firewall.Geo.Database
	}
	if geoPath == "" {
		return deps, func() {}, nil
	}
	db, err := geo.Open(geoPath)
	if err != nil {
		return deps, nil, err
	}
	deps.Geo = db
	return deps, func() { db.Close() }, nil
}

func serveGateway(e *env, path string, c *config.Config, deps gateway.Deps, metricsAddr string) int {
	reg := prometheus.NewRegistry()
	deps.Metrics = reg
	g, err := gateway.New(*c.Gateway, deps)
	if err != nil {
		fmt.Fprintf(e.stderr, "moat gateway serve: %v\n", err)
		var ne *net.OpError
		if errors.As(err, &ne) {
			return ExitRuntime
		}
		return ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if metricsAddr != "" {
		srv := &http.Server{Addr: metricsAddr, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
				e.log.Error("metrics", "err", err)
			}
		}()
		defer srv.Close()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			nc, err := config.Load(path, true)
			switch {
			case err != nil:
				e.log.Error("reload refused; the running config stays", "err", err)
			case nc.Gateway == nil:
				e.log.Error("reload refused: the gateway section is gone; stop the gateway instead")
			default:
				if err := g.Reload(*nc.Gateway); err != nil {
					e.log.Error("reload refused", "err", err)
				}
			}
		}
	}()
	if err := g.Run(ctx); err != nil {
		fmt.Fprintf(e.stderr, "moat gateway serve: %v\n", err)
		return ExitRuntime
	}
	return ExitOK
}
