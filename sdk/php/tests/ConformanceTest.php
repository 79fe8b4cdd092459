<?php

declare(strict_types=1);

namespace Emitgate\Tests;

use Emitgate\Binary;
use Emitgate\Client;
use Emitgate\Exception\EmitgateException;
use Emitgate\Exception\InvalidArgumentException;
use Emitgate\Internal\ArgumentEncoder;
use Emitgate\Internal\BatchLimit;
use Emitgate\Internal\PublishQueue;
use Emitgate\Publisher;
use Emitgate\Tests\Support\Stack;
use PHPUnit\Framework\TestCase;

/**
 * The shared conformance scenarios (tests/conformance/scenarios.json), run
 * against real gateways; tests/conformance/README.md describes the format.
 * A scenario's operations are written with the JavaScript emitter's words
 * and mapped here onto this SDK's API.
 */
final class ConformanceTest extends TestCase
{
    private const ACTIONS = ['emit', 'broadcast', 'serverSideEmit', 'socketsJoin', 'socketsLeave', 'disconnectSockets'];

    private static ?string $run = null;

    private static function dir(): string
    {
        return Stack::repo() . '/tests/conformance';
    }

    private static function file(string $name): \stdClass
    {
        return json_decode((string) file_get_contents(self::dir() . '/' . $name), false, 512, JSON_THROW_ON_ERROR);
    }

    /**
     * @return array<string, array{\stdClass}>
     */
    public static function scenarios(): array
    {
        $out = [];
        foreach (self::file('scenarios.json')->scenarios as $scenario) {
            $out[$scenario->name] = [$scenario];
        }
        return $out;
    }

    private static function runToken(): string
    {
        return self::$run ??= bin2hex(random_bytes(4));
    }

    /**
     * @dataProvider scenarios
     */
    public function testScenario(\stdClass $scenario): void
    {
        if (($scenario->gateway ?? null) === 'closed') {
            $server = stream_socket_server('tcp://127.0.0.1:0');
            $this->assertNotFalse($server);
            $address = (string) stream_socket_get_name($server, false);
            fclose($server);
            $client = new Client($address, timeout: 5.0);
            foreach ($scenario->steps as $n => $step) {
                $call = fn () => $this->perform($client, $step->op, null);
                $this->checkOutcome($call, $step->expect ?? null, "step $n");
            }
            return;
        }
        $name = $scenario->stack ?? 'default';
        $spec = self::file('scenarios.json')->stacks->{$name};
        $args = $spec->gateway_args ?? [];
        if (isset($spec->config)) {
            $config = sys_get_temp_dir() . "/emitgate-php-conformance-$name.toml";
            file_put_contents($config, $spec->config);
            $args = [...$args, '--config', $config];
        }
        $stack = Stack::get($args);
        $stack->reset();
        try {
            $this->runScenario($stack, $scenario);
            $this->assertSame([], $stack->errors(), 'the Socket.IO servers could not handle a message');
        } finally {
            $stack->reset();
        }
    }

    public function testConstantsMatchTheSharedFile(): void
    {
        $c = self::file('constants.json');
        $this->assertSame($c->gateway_defaults->max_batch_items, BatchLimit::DEFAULT_MAX_BATCH_ITEMS);
        $this->assertSame($c->max_depth, ArgumentEncoder::MAX_DEPTH);
        $this->assertSame($c->limit_error->reason, EmitgateException::LIMIT_EXCEEDED);
        $this->assertSame($c->limit_error->domain, EmitgateException::ERROR_DOMAIN);
        $p = $c->publisher;
        $this->assertSame($p->max_items, Publisher::DEFAULT_MAX_ITEMS);
        $this->assertSame($p->max_bytes, Publisher::DEFAULT_MAX_BYTES);
        $this->assertSame($p->buffer, Publisher::DEFAULT_BUFFER);
        $this->assertSame($p->on_full, Publisher::ON_FULL_BLOCK);
        $this->assertSame($p->retry_initial_ms / 1000, PublishQueue::BACKOFF_INITIAL);
        $this->assertSame((float) $p->retry_multiplier, (float) PublishQueue::BACKOFF_MULTIPLIER);
        $this->assertSame((float) ($p->retry_max_ms / 1000), PublishQueue::BACKOFF_MAX);
        $this->assertSame($p->retry_attempts, PublishQueue::MAX_ATTEMPTS);
    }

    // -- values -------------------------------------------------------------

    private static function text(string $s, ?int $i): string
    {
        $s = str_replace('{run}', self::runToken(), $s);
        return $i === null ? $s : str_replace('{i}', (string) $i, $s);
    }

    /** A scenario value as the PHP value it stands for. */
    private static function value(mixed $v, ?int $i): mixed
    {
        if (is_string($v)) {
            return self::text($v, $i);
        }
        if (is_array($v)) {
            $out = [];
            foreach ($v as $item) {
                if ($item instanceof \stdClass && isset($item->{'$spread'})) {
                    for ($n = 0; $n < $item->count; $n++) {
                        $out[] = self::value($item->{'$spread'}, $i);
                    }
                    continue;
                }
                $out[] = self::value($item, $i);
            }
            return $out;
        }
        if ($v instanceof \stdClass) {
            if (isset($v->{'$binary'})) {
                return new Binary((string) base64_decode($v->{'$binary'}, true));
            }
            if (isset($v->{'$int'})) {
                return (int) $v->{'$int'};
            }
            if (isset($v->{'$text'})) {
                return str_repeat($v->{'$text'}, $v->count);
            }
            if (isset($v->{'$repeat'})) {
                $out = [];
                for ($n = 0; $n < $v->count; $n++) {
                    $out[] = str_replace('{i}', (string) $n, $v->{'$repeat'});
                }
                return $out;
            }
            if (isset($v->{'$nest'})) {
                $nested = self::value($v->leaf, $i);
                for ($n = 0; $n < $v->{'$nest'}; $n++) {
                    $nested = [$nested];
                }
                return $nested;
            }
            $out = new \stdClass();
            foreach (get_object_vars($v) as $k => $item) {
                $out->{$k} = self::value($item, $i);
            }
            return $out;
        }
        return $v;
    }

    /** An expected value as the harness reports it (binary stays tagged). */
    private static function expected(mixed $v, ?int $i): mixed
    {
        if (is_string($v)) {
            return self::text($v, $i);
        }
        if (is_array($v)) {
            return array_map(static fn ($item) => self::expected($item, $i), $v);
        }
        if ($v instanceof \stdClass) {
            if (isset($v->{'$binary'})) {
                return $v;
            }
            if (isset($v->{'$nest'})) {
                $nested = self::expected($v->leaf, $i);
                for ($n = 0; $n < $v->{'$nest'}; $n++) {
                    $nested = [$nested];
                }
                return $nested;
            }
            $out = new \stdClass();
            foreach (get_object_vars($v) as $k => $item) {
                $out->{$k} = self::expected($item, $i);
            }
            return $out;
        }
        return $v;
    }

    /** Received against expected JSON; numbers compare as the doubles JavaScript holds. */
    private static function same(mixed $got, mixed $want): bool
    {
        if ((is_int($want) || is_float($want)) && (is_int($got) || is_float($got))) {
            return (float) $got === (float) $want;
        }
        if (is_array($want)) {
            if (!is_array($got) || count($got) !== count($want)) {
                return false;
            }
            foreach ($want as $n => $w) {
                if (!self::same($got[$n], $w)) {
                    return false;
                }
            }
            return true;
        }
        if ($want instanceof \stdClass) {
            if (!$got instanceof \stdClass) {
                return false;
            }
            $g = get_object_vars($got);
            $w = get_object_vars($want);
            if (count($g) !== count($w)) {
                return false;
            }
            foreach ($w as $k => $item) {
                if (!array_key_exists($k, $g) || !self::same($g[$k], $item)) {
                    return false;
                }
            }
            return true;
        }
        return $got === $want;
    }

    /**
     * Each entry with its {i}: {"repeat": entry, "count": n} gives n.
     *
     * @param list<\stdClass> $entries
     * @return list<array{\stdClass, ?int}>
     */
    private static function unroll(array $entries): array
    {
        $out = [];
        foreach ($entries as $entry) {
            if (isset($entry->repeat)) {
                for ($i = 0; $i < $entry->count; $i++) {
                    $out[] = [$entry->repeat, $i];
                }
            } else {
                $out[] = [$entry, null];
            }
        }
        return $out;
    }

    // -- operations ---------------------------------------------------------

    /** Applies the selection words of $op to a client, batch or publisher. */
    private function chain(object $start, \stdClass $op, ?int $i): object
    {
        $o = $start;
        if (isset($op->target)) {
            $o = $o->target($op->target);
        }
        $o = $o->of($op->of ?? '/');
        if (isset($op->to)) {
            $o = $o->to(self::value($op->to, $i));
        }
        if (isset($op->in)) {
            $o = $o->in(self::value($op->in, $i));
        }
        if (isset($op->except)) {
            $o = $o->except(self::value($op->except, $i));
        }
        if ($op->volatile ?? false) {
            $o = $o->volatile();
        }
        if (isset($op->compress)) {
            $o = $o->compress($op->compress);
        }
        if (isset($op->idempotencyKey)) {
            $o = $o->idempotencyKey(self::text($op->idempotencyKey, $i));
        }
        return $o;
    }

    private function perform(object $start, \stdClass $op, ?int $i): mixed
    {
        $actions = array_values(array_filter(self::ACTIONS, static fn ($a) => isset($op->{$a})));
        $this->assertCount(1, $actions, 'one action per operation');
        $o = $this->chain($start, $op, $i);
        $value = self::value($op->{$actions[0]}, $i);
        return match ($actions[0]) {
            'emit' => $o->emit(...$value),
            'broadcast' => $o->broadcast(...$value),
            'serverSideEmit' => $o->serverSideEmit(...$value),
            'socketsJoin' => $o->socketsJoin($value),
            'socketsLeave' => $o->socketsLeave($value),
            'disconnectSockets' => $o->disconnectSockets($value),
        };
    }

    private function checkError(\Throwable $error, \stdClass $want, string $where): void
    {
        $this->assertInstanceOf(EmitgateException::class, $error, "$where: " . $error->getMessage());
        $this->assertSame($want->code, $error->getStatusCode()->name, "$where: " . $error->getMessage());
        $fields = $error instanceof InvalidArgumentException ? $error->getFields() : [];
        foreach ($want->fields ?? [] as $field) {
            $found = false;
            foreach ($fields as $f) {
                $found = $found || $f === $field
                    || str_starts_with($f, $field . '.') || str_starts_with($f, $field . '[');
            }
            $this->assertTrue($found, "$where: no violation on $field in " . json_encode($fields));
        }
        foreach (get_object_vars($want->limits ?? new \stdClass()) as $name => $value) {
            $limits = $error->getLimits();
            $this->assertSame($value, $limits[$name] ?? null, "$where: limits " . json_encode($limits));
        }
    }

    private function checkResult(object $result, \stdClass $want, string $where): void
    {
        foreach (get_object_vars($want) as $name => $value) {
            $this->assertSame($value, $result->{$name}, "$where: $name");
        }
    }

    private function checkOutcome(callable $call, ?\stdClass $want, string $where): void
    {
        try {
            $result = $call();
        } catch (EmitgateException $error) {
            $this->assertTrue(isset($want->error), "$where: unexpected " . $error->getMessage());
            $this->checkError($error, $want->error, $where);
            return;
        }
        $this->assertFalse(isset($want->error), "$where: no error; got " . json_encode($result));
        $this->checkResult($result, $want->result ?? new \stdClass(), $where);
    }

    private function runBatch(Client $io, \stdClass $step, string $where): void
    {
        $items = self::unroll($step->batch);
        $batch = $io->batch();
        foreach ($items as [$entry, $i]) {
            $this->perform($batch, $entry->op, $i);
        }
        $want = $step->expect ?? new \stdClass();
        try {
            $result = $batch->send();
        } catch (EmitgateException $error) {
            $this->assertTrue(isset($want->error), "$where: unexpected " . $error->getMessage());
            $this->checkError($error, $want->error, $where);
            return;
        }
        $this->assertFalse(isset($want->error), "$where: no error");
        foreach (['published', 'failed'] as $name) {
            if (isset($want->{$name})) {
                $this->assertSame($want->{$name}, $result->{$name}, "$where: $name");
            }
        }
        foreach ($items as $n => [$entry]) {
            if (!isset($entry->expect)) {
                continue;
            }
            $item = $result->results[$n];
            if (isset($entry->expect->error)) {
                $this->assertSame($entry->expect->error->code, $item->code->name, "$where item $n");
                $fields = array_map(static fn ($v) => $v->field, $item->violations);
                foreach ($entry->expect->error->fields ?? [] as $field) {
                    $this->assertContains($field, $fields, "$where item $n");
                }
            } else {
                $this->assertTrue($item->isOk(), "$where item $n: " . $item->message);
                $this->checkResult($item, $entry->expect->result ?? new \stdClass(), "$where item $n");
            }
        }
    }

    private function runPublisher(Client $io, \stdClass $step, string $where): void
    {
        $items = self::unroll($step->publisher);
        // One call in flight is the only way this SDK sends (max_in_flight).
        $publisher = $io->publisher();
        $handles = [];
        foreach ($items as [$entry, $i]) {
            $handles[] = $this->perform($publisher, $entry->op, $i);
        }
        $publisher->close();
        foreach ($items as $n => [$entry]) {
            $this->checkOutcome(fn () => $handles[$n]->get(), $entry->expect ?? null, "$where event $n");
        }
    }

    private function runScenario(Stack $stack, \stdClass $scenario): void
    {
        $clients = [];
        foreach (get_object_vars($scenario->clients ?? new \stdClass()) as $name => $spec) {
            $namespace = $spec->namespace ?? '/';
            $clients[$name] = $stack->connect($namespace, $spec->server ?? 0, $spec->rooms ?? []);
            $clients[$name]['ns'] = $namespace;
        }
        foreach ($scenario->listen ?? [] as $listener) {
            $stack->listen($listener->namespace, $listener->event);
        }
        $io = new Client($stack->grpc, timeout: 10.0);
        foreach ($scenario->steps as $n => $step) {
            if (isset($step->batch)) {
                $this->runBatch($io, $step, "step $n");
            } elseif (isset($step->publisher)) {
                $this->runPublisher($io, $step, "step $n");
            } else {
                $call = fn () => $this->perform($io, $step->op, null);
                $this->checkOutcome($call, $step->expect ?? null, "step $n");
            }
        }
        $want = $scenario->expect ?? new \stdClass();
        foreach (get_object_vars($want->disconnected ?? new \stdClass()) as $name => $reason) {
            $this->assertSame($reason, $stack->disconnectReason($clients[$name]['id']), "client $name");
        }
        foreach (get_object_vars($want->rooms ?? new \stdClass()) as $name => $rooms) {
            $got = array_values(array_diff($stack->rooms($clients[$name]['id']), [$clients[$name]['sid']]));
            sort($rooms);
            $this->assertSame($rooms, $got, "rooms of client $name");
        }
        foreach ($want->server_events ?? [] as $se) {
            $events = $stack->serverEvents($se->namespace, $se->event, $se->count);
            $this->assertCount($se->count, $events);
            foreach ($events as $e) {
                $same = self::same($e['args'], self::expected($se->args, null));
                $this->assertTrue($same, 'server event ' . json_encode($e));
            }
        }
        // One barrier per namespace: what a client had not received before
        // it was not delivered (Redis delivers to each server in publish order).
        $deliveries = get_object_vars($want->deliveries ?? new \stdClass());
        $barriers = [];
        foreach (array_keys($deliveries) as $name) {
            $ns = $clients[$name]['ns'];
            if (!isset($barriers[$ns])) {
                $barriers[$ns] = 'barrier-' . self::runToken() . '-' . count($barriers);
                $io->of($ns)->broadcast($barriers[$ns]);
            }
        }
        foreach ($deliveries as $name => $wanted) {
            $barrier = $barriers[$clients[$name]['ns']];
            $events = $stack->eventsUntil($clients[$name]['id'], $barrier);
            $got = [];
            foreach ($events as $e) {
                if ($e['event'] === $barrier) {
                    break;
                }
                $got[] = $e;
            }
            $expected = self::unroll($wanted);
            $seen = substr((string) json_encode($got), 0, 300);
            $this->assertCount(count($expected), $got, "client $name: $seen");
            foreach ($expected as $n => [$w, $i]) {
                $this->assertSame(self::text($w->event, $i), $got[$n]['event'], "client $name event $n");
                $this->assertTrue(
                    self::same($got[$n]['args'], self::expected($w->args, $i)),
                    "client $name event $n: " . json_encode($got[$n]['args'])
                );
            }
        }
    }
}
