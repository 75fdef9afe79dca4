package main

import (
	"github.com/hearth-im/hearth/plugins"
	"github.com/hearth-im/hearth/plugins/disco"
	"github.com/hearth-im/hearth/plugins/ping"
	"github.com/hearth-im/hearth/plugins/register"
	xtime "github.com/hearth-im/hearth/plugins/time"
	xversion "github.com/hearth-im/hearth/plugins/version"
)

// pluginList is the binary's plugin list: the only place that names plugins.
func pluginList() []plugins.Info {
	return []plugins.Info{
		disco.Plugin(),
		ping.Plugin(),
		xversion.Plugin(),
		xtime.Plugin(),
		register.Plugin(),
	}
}
