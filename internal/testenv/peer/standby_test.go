package peer_test

func stopStandbys() {}
