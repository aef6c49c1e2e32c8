// Package rabbittest gives tests a real RabbitMQ broker, names that cannot
// collide with other tests on that broker, a TCP proxy to cut or black-hole
// connections, and control over a 3-node cluster for node-loss tests.
//
// Finding a broker ([URL], [New]) tries, in order:
//
//  1. AMQP_URL from the environment (it must answer, or the test fails);
//  2. the local server on amqp://guest:guest@127.0.0.1:5672/;
//  3. a throwaway container of [DockerImage], started with
//     github.com/ory/dockertest/v3, only if a Docker engine answers (checked
//     without any connection when no engine is configured, so this step
//     costs microseconds on a machine without Docker);
//  4. otherwise the test is skipped with a message saying how to get a
//     broker, except when the CI environment variable is non-empty: then it
//     fails, because integration tests must not silently skip in CI.
//
// A typical test:
//
//	func TestOrders(t *testing.T) {
//		f := rabbittest.New(t)
//		q := f.Name("orders") // deleted, with q+".dlq" and q+".dlx", at cleanup
//		conn := f.Dial()
//		ch, err := conn.Channel()
//		if err != nil {
//			t.Fatal(err)
//		}
//		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
//			t.Fatal(err)
//		}
//		// ...
//	}
//
// Faults: [NewProxy] puts an in-process TCP proxy between client and broker;
// [Proxy.Cut] drops every connection at once, [Proxy.Block] refuses new
// ones and [Proxy.Blackhole] silently swallows traffic, so that only
// heartbeats can notice.
//
// Node loss: [Cluster] reads the 3-node cluster that scripts/rabbit-cluster.sh
// starts beside the default broker (eval "$(scripts/rabbit-cluster.sh env)")
// and can kill -9 a node, start it again and tell which node leads a quorum
// queue.
//
// Everything here registers its teardown with t.Cleanup and keeps no
// package-level state. Functions that take a testing.TB report failures with
// t.Fatal and so must be called from the test's own goroutine.
package rabbittest
