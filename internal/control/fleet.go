package control

// CmdFleetStatus is `moat fleet status`'s command: the fleet's nodes,
// stream health, consumer lag and decisions per origin.
const CmdFleetStatus = "fleet.status"
