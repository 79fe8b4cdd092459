<?php

declare(strict_types=1);

namespace Emitgate\Tests\Support;

use Emitgate\Client;
use PHPUnit\Framework\TestCase;

/**
 * Base class of the tests that run against the real stack: each test starts
 * with no clients, and ends by checking that no Socket.IO server recorded an
 * error (such as a message it could not decode).
 */
abstract class EndToEndTestCase extends TestCase
{
    protected Stack $stack;
    protected Client $io;
    private int $barriers = 0;

    /**
     * The gateway arguments of the stack the test class runs against.
     *
     * @return list<string>
     */
    protected static function gatewayArgs(): array
    {
        return [];
    }

    /**
     * Extra arguments of tests/harness/stack.js for the stack of the test class.
     *
     * @return list<string>
     */
    protected static function harnessArgs(): array
    {
        return [];
    }

    protected function setUp(): void
    {
        $this->stack = Stack::get(static::gatewayArgs(), static::harnessArgs());
        $this->stack->reset();
        $this->io = $this->client();
    }

    /**
     * The client of the test ($this->io), which also sends the barriers:
     * one the stack's gateway serves in full.
     */
    protected function client(): Client
    {
        return new Client($this->stack->grpc);
    }

    protected function tearDown(): void
    {
        $errors = $this->stack->errors();
        $this->stack->request('DELETE', '/errors');
        $this->assertSame([], $errors, 'the Socket.IO servers recorded errors');
        $this->io->close();
    }

    /**
     * Broadcasts a fresh sentinel event to the namespace and waits until each
     * client got it; returns, per client id, the names of the events it had
     * received before it. Redis delivers in publish order, so anything
     * published earlier that was not received never will be.
     *
     * @param list<string> $clientIds
     * @return array<string, list<string>> client id => event names before the barrier
     */
    protected function barrier(array $clientIds, string $namespace = '/'): array
    {
        $name = 'barrier-' . ++$this->barriers;
        $this->io->of($namespace)->broadcast($name);
        $seen = [];
        foreach ($clientIds as $id) {
            $names = array_column($this->stack->eventsUntil($id, $name), 'event');
            $seen[$id] = array_values(array_filter(
                array_slice($names, 0, (int) array_search($name, $names, true)),
                static fn (string $n): bool => !str_starts_with($n, 'barrier-')
            ));
        }
        return $seen;
    }

    /**
     * Waits for an event and returns its arguments (JSON objects as stdClass,
     * binary as {"$binary": base64}).
     *
     * @return list<mixed>
     */
    protected function argsOf(string $clientId, string $event): array
    {
        foreach ($this->stack->eventsUntil($clientId, $event) as $received) {
            if ($received['event'] === $event) {
                return $received['args'];
            }
        }
        $this->fail("no $event event");
    }

    /**
     * The JSON form the harness uses for binary values.
     */
    protected static function bin(string $bytes): \stdClass
    {
        return (object) ['$binary' => base64_encode($bytes)];
    }
}
