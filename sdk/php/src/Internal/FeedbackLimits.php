<?php

declare(strict_types=1);

namespace Emitgate\Internal;

/**
 * Constants of the waiting calls (Feedback).
 *
 * @internal
 */
final class FeedbackLimits
{
    /**
     * Seconds a waiting call's deadline gets beyond its answer timeout, so
     * that the gateway's answer after a timeout arrives before the deadline.
     */
    public const DEADLINE_MARGIN = 2.0;

    /** The largest timeout_ms a request can carry (a uint32). */
    public const MAX_WAIT_MS = 4294967295;
}
