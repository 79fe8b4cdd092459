<?php

declare(strict_types=1);

namespace Emitgate;

use Emitgate\Exception\EmitgateException;
use Emitgate\Exception\InvalidArgumentException;
use Emitgate\Exception\ResourceExhaustedException;
use Emitgate\Internal\Operators;
use Emitgate\Internal\PublisherOwner;
use Emitgate\Internal\PublishQueue;
use Emitgate\Internal\Requests;
use Emitgate\Internal\Scope;
use Emitgate\Internal\Texts;
use Emitgate\Internal\Wire;

/**
 * Publishes events one at a time through the usual operators and sends them
 * in batches (non-atomic BatchEmit calls): for pipelines that emit many
 * events. Each publish returns a PublishResult at once.
 *
 * ```php
 * $publisher = $io->publisher();            // or new Publisher($io, maxItems: 500)
 * foreach ($notifications as $n) {
 *     $handles[] = $publisher->to("user:{$n->user}")->emit('notification', $n->payload);
 * }
 * $publisher->flush();                      // sends the rest, resolves every handle
 * $handles[0]->get();                       // ItemResult, or throws the event's error
 * ```
 *
 * PHP has no background timer: a batch is sent when it is full (maxItems
 * events or maxBytes bytes), on flush(), on close() and when the last
 * reference to the publisher goes away. One BatchEmit call is in flight at a
 * time, so events reach the gateway in publish order.
 *
 * The operators (of, to, in, except, volatile, compress, target,
 * idempotencyKey) are immutable, as on Client: each returns a publisher that
 * shares the same buffer.
 */
final class Publisher
{
    use Operators;

    /** The most events in one BatchEmit call: the gateway's default `max_batch_items`. */
    public const DEFAULT_MAX_ITEMS = 1000;

    /** The most encoded event bytes in one BatchEmit call: 4 MiB, well under the gateway's 16 MiB. */
    public const DEFAULT_MAX_BYTES = 4 * 1024 * 1024;

    /** The most events published and not yet answered. */
    public const DEFAULT_BUFFER = 100_000;

    /** Beyond the buffer, publishing sends the buffered events first (waits for them). */
    public const ON_FULL_BLOCK = 'block';

    /** Beyond the buffer, publishing throws a local ResourceExhaustedException. */
    public const ON_FULL_ERROR = 'error';

    private Scope $scope;

    private PublishQueue $queue;

    /** Flushes the queue when the last publisher sharing it goes away. */
    private PublisherOwner $owner;

    /**
     * The publishers to() made from this one, by their rooms joined with
     * "\0": a pipeline cycles through a working set of room lists, and a
     * publisher keeps its scope's encoded bytes, so to() with the same rooms
     * again costs one lookup. At most TO_CACHE_MAX of them (unique rooms,
     * one per user, just miss).
     *
     * @var array<string, static>
     */
    private array $children = [];

    /** How many publishers to() keeps (see $children). */
    private const TO_CACHE_MAX = 4096;

    /**
     * @param Client $client the client whose connection, scope (target,
     *        namespace, rooms, flags) and deadline the publisher uses
     * @param int $maxItems the most events per BatchEmit call (1000, the
     *        gateway's default; a lower limit reported by the gateway wins)
     * @param int $maxBytes the most encoded event bytes per BatchEmit call (4 MiB)
     * @param int $buffer the most events published and not yet answered (100 000)
     * @param string $onFull what publishing beyond the buffer does:
     *        `block` (default) sends the buffered events first, `error`
     *        throws a local ResourceExhaustedException
     * @throws \InvalidArgumentException when an option is out of range, or
     *         \LogicException when the client has an idempotency key
     */
    public function __construct(
        Client $client,
        int $maxItems = self::DEFAULT_MAX_ITEMS,
        int $maxBytes = self::DEFAULT_MAX_BYTES,
        int $buffer = self::DEFAULT_BUFFER,
        string $onFull = self::ON_FULL_BLOCK,
    ) {
        foreach (['maxItems' => $maxItems, 'maxBytes' => $maxBytes, 'buffer' => $buffer] as $name => $value) {
            if ($value < 1) {
                throw new \InvalidArgumentException("$name must be at least 1, got $value");
            }
        }
        if ($onFull !== self::ON_FULL_BLOCK && $onFull !== self::ON_FULL_ERROR) {
            throw new \InvalidArgumentException('onFull must be "block" or "error", got "' . $onFull . '"');
        }
        $client->noKeyForMany('publisher()');
        $this->scope = $client->getScope();
        $this->queue = new PublishQueue(
            $client->getTransport(),
            $client->getTimeout(),
            $client->getBatchLimit(),
            $maxItems,
            $maxBytes,
            $buffer,
            $onFull === self::ON_FULL_ERROR
        );
        $this->owner = new PublisherOwner($this->queue);
    }

    /**
     * Publishes an event to the sockets in the selected rooms, minus the
     * excepted rooms. At least one room is required (the gateway refuses the
     * event otherwise): use broadcast() to reach a whole namespace.
     *
     * An event the SDK cannot encode fails its handle at once; the others go
     * on.
     *
     * @param string $event the event name (not a reserved one such as `connect`)
     * @param mixed ...$args the arguments, by position, as in Client::emit()
     * @return PublishResult the event's handle
     * @throws ResourceExhaustedException locally when the buffer is full and
     *         onFull is `error` (the event is not published)
     * @throws \LogicException when the publisher is closed
     */
    public function emit(string $event, mixed ...$args): PublishResult
    {
        return $this->publish(false, $event, $args);
    }

    /**
     * Publishes an event to every socket of the namespace, minus the
     * excepted rooms; a scope with rooms fails the handle at once.
     *
     * @param string $event the event name
     * @param mixed ...$args the arguments, by position
     * @return PublishResult the event's handle
     * @throws ResourceExhaustedException locally when the buffer is full and
     *         onFull is `error`
     * @throws \LogicException when the publisher is closed
     */
    public function broadcast(string $event, mixed ...$args): PublishResult
    {
        return $this->publish(true, $event, $args);
    }

    /**
     * Adds rooms to reach, as Client::to(); the same as the operator of the
     * other classes, written out because it is on the hot path of every
     * publish.
     *
     * @param string|list<string> ...$rooms room names, or lists of them
     * @return static a publisher with the rooms added, sharing this buffer
     */
    public function to(string|array ...$rooms): static
    {
        $s = $this->scope;
        $key = null;
        if ($s->rooms === [] && count($rooms) === 1) {
            // to($name) or to($list) of names: the common call, cached.
            $names = is_array($rooms[0]) ? $rooms[0] : $rooms;
            foreach ($names as $name) {
                if (!is_string($name)) {
                    $names = null;
                    break;
                }
            }
            if ($names !== null) {
                $key = implode("\0", $names);
                $hit = $this->children[$key] ?? null;
                // Same names in the same order: the same scope ("\0" in a
                // name, a duplicate name or keys other than a list miss).
                if ($hit !== null && $hit->scope->rooms === $names) {
                    return $hit;
                }
            }
        }
        $copy = clone $this;
        $copy->children = [];
        $copy->scope = new Scope(
            $s->target,
            $s->namespace,
            Texts::rooms($s->rooms, $rooms, 'rooms'),
            $s->except,
            $s->volatile,
            $s->compress,
            $s->idempotencyKey
        );
        if ($key !== null && count($this->children) < self::TO_CACHE_MAX) {
            $this->children[$key] = $copy;
        }
        return $copy;
    }

    /**
     * Sends every buffered event and resolves every handle. Errors go to the
     * handles; flush() itself does not throw them.
     */
    public function flush(): void
    {
        $this->queue->flush();
    }

    /**
     * Flushes, then stops: publishing afterwards throws a \LogicException.
     * Also done when the last publisher sharing this buffer goes away.
     */
    public function close(): void
    {
        $this->queue->close();
    }

    /**
     * Returns how many events are buffered and not sent yet.
     *
     * @return int the number of events
     */
    public function pending(): int
    {
        return $this->queue->pending();
    }

    /**
     * Returns the current scope.
     *
     * @return Scope the scope
     */
    protected function scope(): Scope
    {
        return $this->scope;
    }

    /**
     * Returns a publisher with another scope and the same buffer.
     *
     * @param Scope $scope the new scope
     * @return static the copy
     */
    protected function withScope(Scope $scope): static
    {
        $copy = clone $this;
        $copy->children = [];
        $copy->scope = $scope;
        return $copy;
    }

    /**
     * @param array<int|string, mixed> $args
     * @throws EmitgateException
     */
    private function publish(bool $broadcast, string $event, array $args): PublishResult
    {
        $this->queue->checkOpen();
        Requests::positional($args);
        $scope = $this->scope;
        $handle = new PublishResult($this->queue);
        if ($broadcast && $scope->rooms !== []) {
            $handle->fail(InvalidArgumentException::local(
                'rooms',
                'broadcast() reaches the whole namespace; use emit() to reach rooms'
            ));
            return $handle;
        }
        $kind = $broadcast ? 1 : 0;
        try {
            $item = Wire::item($scope->wire[$kind] ??= Wire::scopeBytes($scope, $broadcast), $broadcast, $event, $args);
        } catch (InvalidArgumentException $e) {
            $handle->fail($e);
            return $handle;
        }
        $this->queue->add($item, $scope->idempotencyKey !== '', $handle);
        return $handle;
    }
}
