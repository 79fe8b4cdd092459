<?php

declare(strict_types=1);

namespace Emitgate;

use Emitgate\Exception\EmitgateException;
use Emitgate\Exception\InternalException;
use Emitgate\Internal\BatchLimit;
use Emitgate\Internal\Requests;
use Emitgate\Internal\Scope;
use Emitgate\Proto\V1\BatchEmitRequest;
use Emitgate\Proto\V1\BatchEmitResponse;
use Emitgate\Proto\V1\BatchItem;
use Emitgate\Proto\V1\FieldViolation as ProtoFieldViolation;
use Emitgate\Transport\CurlTransport;

/**
 * Many emits and broadcasts sent in one BatchEmit call, published in the
 * order they were added.
 *
 * ```php
 * $result = $io->batch()
 *     ->emit('a')                                 // uses the client's scope
 *     ->to('room1')->emit('chat', 'hello')         // scoped item, back to the batch
 *     ->of('/admin')->except('bots')->broadcast('stats', ['n' => 3])
 *     ->send();
 * ```
 *
 * Without atomic(), valid items are published and invalid ones are reported
 * in their ItemResult. With atomic(), one invalid item rejects the whole
 * batch with an InvalidArgumentException and nothing is published.
 */
final class Batch implements \Countable
{
    /** @var list<BatchItem> */
    private array $items = [];

    private bool $atomic = false;

    private ?BatchResult $result = null;

    /**
     * Use Client::batch().
     *
     * @param CurlTransport $transport the client's transport
     * @param Scope $scope the scope items start from
     * @param float $timeout the deadline of each BatchEmit call, in seconds
     * @param BatchLimit $limit the client's chunk size
     * @internal
     */
    public function __construct(
        private readonly CurlTransport $transport,
        private readonly Scope $scope,
        private readonly float $timeout,
        private readonly BatchLimit $limit = new BatchLimit(),
    ) {
    }

    /**
     * Selects a namespace for the next item.
     *
     * @param string $namespace e.g. '/admin'
     * @return BatchOperator an operator whose emit()/broadcast() add an item
     */
    public function of(string $namespace): BatchOperator
    {
        return $this->operator()->of($namespace);
    }

    /**
     * Selects rooms for the next item.
     *
     * @param string|list<string> ...$rooms room names, or lists of them
     * @return BatchOperator an operator whose emit()/broadcast() add an item
     */
    public function to(string|array ...$rooms): BatchOperator
    {
        return $this->operator()->to(...$rooms);
    }

    /**
     * Same as to().
     *
     * @param string|list<string> ...$rooms room names, or lists of them
     * @return BatchOperator an operator whose emit()/broadcast() add an item
     */
    public function in(string|array ...$rooms): BatchOperator
    {
        return $this->operator()->to(...$rooms);
    }

    /**
     * Selects rooms to skip for the next item.
     *
     * @param string|list<string> ...$rooms room names, or lists of them
     * @return BatchOperator an operator whose emit()/broadcast() add an item
     */
    public function except(string|array ...$rooms): BatchOperator
    {
        return $this->operator()->except(...$rooms);
    }

    /**
     * Sets the volatile flag for the next item.
     *
     * @return BatchOperator an operator whose emit()/broadcast() add an item
     */
    public function volatile(): BatchOperator
    {
        return $this->operator()->volatile();
    }

    /**
     * Sets the compress flag for the next item.
     *
     * @param bool $compress true to compress, false not to
     * @return BatchOperator an operator whose emit()/broadcast() add an item
     */
    public function compress(bool $compress = true): BatchOperator
    {
        return $this->operator()->compress($compress);
    }

    /**
     * Sets the idempotency key of the next item.
     *
     * @param string $key the key
     * @return BatchOperator an operator whose emit()/broadcast() add an item
     */
    public function idempotencyKey(string $key): BatchOperator
    {
        return $this->operator()->idempotencyKey($key);
    }

    /**
     * Selects a target for the next item.
     *
     * @param string $target the target name; '' for the default
     * @return BatchOperator an operator whose emit()/broadcast() add an item
     */
    public function target(string $target): BatchOperator
    {
        return $this->operator()->target($target);
    }

    /**
     * Adds an emit to the rooms of the batch's starting scope.
     *
     * @param string $event the event name
     * @param mixed ...$args the arguments, by position (the item's idempotency
     *        key is set with `->idempotencyKey('k')->emit(...)`)
     * @return self this batch
     * @throws EmitgateException locally when an argument cannot be encoded
     */
    public function emit(string $event, mixed ...$args): self
    {
        return $this->addEmit($this->scope, $event, $args);
    }

    /**
     * Adds a broadcast to the namespace of the batch's starting scope.
     *
     * @param string $event the event name
     * @param mixed ...$args the arguments, by position (the item's idempotency
     *        key is set with `->idempotencyKey('k')->emit(...)`)
     * @return self this batch
     * @throws EmitgateException locally when an argument cannot be encoded
     */
    public function broadcast(string $event, mixed ...$args): self
    {
        return $this->addBroadcast($this->scope, $event, $args);
    }

    /**
     * Makes the batch all-or-nothing: one invalid item rejects the whole call
     * and nothing is published.
     *
     * @param bool $atomic true for all-or-nothing
     * @return self this batch
     */
    public function atomic(bool $atomic = true): self
    {
        $this->atomic = $atomic;
        return $this;
    }

    /**
     * Returns how many items the batch holds.
     *
     * @return int the number of items
     */
    public function count(): int
    {
        return count($this->items);
    }

    /**
     * Sends the batch.
     *
     * A batch with more items than the gateway's item limit (the client's
     * `maxBatchItems`, 1000 by default like the gateway) is split into
     * several BatchEmit calls, sent one after the other. When the gateway
     * refuses a call for its number of items (which publishes nothing), the
     * items are resent in chunks of the limit it states (or half as many),
     * and the client keeps the smaller size for later batches. An atomic
     * batch is always one call, so it must fit in the gateway's limit.
     *
     * When a call fails as a whole (UNAVAILABLE, a deadline, ...), send()
     * throws its error: the items of the earlier calls stay published, and
     * result() lists them.
     *
     * @return BatchResult one ItemResult per item, in order; field paths
     *         (`items[1500].emit.event`) count over the whole batch
     * @throws EmitgateException when a call fails (or, for an atomic batch,
     *         when any item is invalid)
     */
    public function send(): BatchResult
    {
        $this->result = new BatchResult([], 0, 0, 0, 0);
        $offset = 0;
        $total = count($this->items);
        do {
            $size = $this->atomic ? $total : min($this->limit->maxItems, $total - $offset);
            $request = new BatchEmitRequest();
            $request->setItems($size === $total ? $this->items : array_slice($this->items, $offset, $size));
            $request->setAtomic($this->atomic);
            try {
                /** @var BatchEmitResponse $response */
                $response = Requests::call(
                    $this->transport,
                    'BatchEmit',
                    $request,
                    new BatchEmitResponse(),
                    $this->timeout
                );
            } catch (EmitgateException $e) {
                if (!$this->atomic && $this->limit->shrinkOn($e, $size)) {
                    continue;
                }
                throw $e;
            }
            $this->result = $this->result->merge(self::results($response, $size, $offset));
            $offset += $size;
        } while ($offset < $total);
        return $this->result;
    }

    /**
     * Returns what the last send() published: all items after a successful
     * send(), the items of the calls made before the one that failed
     * otherwise; null before send().
     *
     * @return BatchResult|null the results so far
     */
    public function result(): ?BatchResult
    {
        return $this->result;
    }

    /**
     * Reads the answer to a BatchEmit call of $size items, the first of
     * which is item $offset of the batch.
     *
     * @param BatchEmitResponse $response the answer
     * @param int $size the number of items sent
     * @param int $offset the batch index of the first item sent
     * @return BatchResult the results of these items
     * @throws EmitgateException when the answer does not hold one result per item
     * @internal
     */
    public static function results(BatchEmitResponse $response, int $size, int $offset): BatchResult
    {
        $results = [];
        foreach ($response->getResults() as $r) {
            $violations = [];
            /** @var ProtoFieldViolation $v */
            foreach ($r->getViolations() as $v) {
                $violations[] = new FieldViolation(self::shift($v->getField(), $offset), $v->getDescription());
            }
            $results[] = new ItemResult(
                Code::fromInt($r->getCode()),
                $r->getMessage(),
                $violations,
                (int) $r->getReceivers(),
                $r->getDuplicate(),
                $r->getStreamId() === '' ? null : $r->getStreamId()
            );
        }
        if (count($results) !== $size) {
            throw new InternalException(
                Code::INTERNAL,
                sprintf('the gateway answered %d results for %d items', count($results), $size),
                true
            );
        }
        return new BatchResult(
            $results,
            (int) $response->getPublished(),
            (int) $response->getFailed(),
            (int) $response->getReceivers(),
            1
        );
    }

    /**
     * Turns the path of a request item (`items[3].emit.event`) into the
     * path of the batch item, $offset items further.
     */
    private static function shift(string $field, int $offset): string
    {
        if ($offset === 0 || preg_match('/^items\[(\d+)\]/', $field, $m) !== 1) {
            return $field;
        }
        return 'items[' . ((int) $m[1] + $offset) . ']' . substr($field, strlen($m[0]));
    }

    /**
     * Adds an emit item; used by BatchOperator.
     *
     * @param Scope $scope the item's scope
     * @param string $event the event name
     * @param array<int|string, mixed> $args the arguments, by position
     * @return self this batch
     * @internal
     */
    public function addEmit(Scope $scope, string $event, array $args): self
    {
        $prefix = 'items[' . count($this->items) . '].emit.';
        $this->items[] = (new BatchItem())->setEmit(Requests::emit($scope, $event, $args, $prefix));
        return $this;
    }

    /**
     * Adds a broadcast item; used by BatchOperator.
     *
     * @param Scope $scope the item's scope
     * @param string $event the event name
     * @param array<int|string, mixed> $args the arguments, by position
     * @return self this batch
     * @internal
     */
    public function addBroadcast(Scope $scope, string $event, array $args): self
    {
        $prefix = 'items[' . count($this->items) . '].broadcast.';
        $this->items[] = (new BatchItem())->setBroadcast(Requests::broadcast($scope, $event, $args, $prefix));
        return $this;
    }

    private function operator(): BatchOperator
    {
        return new BatchOperator($this, $this->scope);
    }
}
