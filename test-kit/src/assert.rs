//! `assert_receive!`, `refute_receive!` and their no-wait forms, as ExUnit's.

use std::marker::PhantomData;
use std::time::Duration;

use crate::inbox::{Inbox, Mailbox, Missed};
use crate::message::{Message, Receive};

/// How long [`assert_receive!`](crate::assert_receive) waits when no timeout is given, as
/// ExUnit's `assert_receive_timeout`: 100 ms.
pub const DEFAULT_RECEIVE_TIMEOUT: Duration = Duration::from_millis(100);

/// How long [`refute_receive!`](crate::refute_receive) waits when no timeout is given, as
/// ExUnit's `refute_receive_timeout`: 100 ms.
pub const DEFAULT_REFUTE_TIMEOUT: Duration = Duration::from_millis(100);

/// Wait for a message matching a pattern to reach a probe's or a mock's mailbox, and return
/// what the pattern binds (or the decoded message); panic if none comes in time.
///
/// ```text
/// assert_receive!(mailbox, PATTERN [if GUARD] [=> EXPR] [, TIMEOUT])
/// assert_receive!(mailbox, as TYPE, PATTERN [if GUARD] [=> EXPR] [, TIMEOUT])
/// ```
///
/// - `mailbox`: a [`Probe`](crate::Probe) or a [`Mock`](crate::Mock) (or a reference).
/// - `PATTERN` is matched against each message decoded as the type it names (see
///   [`Receive`](crate::Receive)): your own serde type for a plain message
///   (`Event::Changed { key, .. }`), [`Cast(..)`](crate::Cast), [`Call(..)`](crate::Call),
///   [`Down { .. }`](crate::Down), [`Exit { .. }`](crate::Exit), [`Timer(..)`](crate::Timer).
///   A message that does not decode as that type does not match. When the pattern names no
///   type (a bare binding, a tuple of bindings), give it with `as TYPE`.
/// - `if GUARD` is a match guard over the pattern's bindings, by value.
/// - `=> EXPR` is what the macro returns, from the pattern's bindings; without it, the
///   decoded message is returned.
/// - `TIMEOUT` is a [`Duration`](std::time::Duration); default
///   [`DEFAULT_RECEIVE_TIMEOUT`](crate::DEFAULT_RECEIVE_TIMEOUT), 100 ms.
///
/// It must be awaited in, so it is used inside an `async` test; it expands to an `.await`.
///
/// ## Selective receive
///
/// The first message, in arrival order, that matches is taken from the mailbox. The others
/// stay, in their order, for later assertions, as in Erlang's `receive`: a test may assert
/// on the `DOWN` before the message that came first.
///
/// # Panics
/// If no matching message arrives within the timeout (or the probe exits first). The
/// message names the pattern and lists every message waiting in the mailbox, bodies shown
/// as JSON-like text, each with why it did not decode as the pattern's type where it did
/// not:
///
/// ```text
/// assert_receive!: no message matching `Event::Changed { key, .. } if key == "b"` reached probe <4> within 100ms
/// probe <4>'s mailbox holds 1 message:
///   1. message {"changed": {"key": "a", "value": "1"}}
/// ```
#[macro_export]
macro_rules! assert_receive {
    ($mailbox:expr, as $t:ty, $p:pat $(if $guard:expr)? $(=> $out:expr)? $(, $timeout:expr)?) => {
        $crate::__assert_receive!(
            "assert_receive!", ($mailbox), ($t), ($p), [$($guard)?], [$($out)?], [$($timeout)?]
        )
    };
    ($mailbox:expr, $p:pat $(if $guard:expr)? $(=> $out:expr)? $(, $timeout:expr)?) => {
        $crate::__assert_receive!(
            "assert_receive!", ($mailbox), (_), ($p), [$($guard)?], [$($out)?], [$($timeout)?]
        )
    };
}

/// [`assert_receive!`] that does not wait: the message must be in the mailbox already, as
/// ExUnit's `assert_received`.
///
/// ```text
/// assert_received!(mailbox, [as TYPE,] PATTERN [if GUARD] [=> EXPR])
/// ```
///
/// # Panics
/// As [`assert_receive!`].
#[macro_export]
macro_rules! assert_received {
    ($mailbox:expr, as $t:ty, $p:pat $(if $guard:expr)? $(=> $out:expr)?) => {
        $crate::__assert_receive!(
            "assert_received!", ($mailbox), ($t), ($p), [$($guard)?], [$($out)?],
            [::std::time::Duration::ZERO]
        )
    };
    ($mailbox:expr, $p:pat $(if $guard:expr)? $(=> $out:expr)?) => {
        $crate::__assert_receive!(
            "assert_received!", ($mailbox), (_), ($p), [$($guard)?], [$($out)?],
            [::std::time::Duration::ZERO]
        )
    };
}

/// Fail if a message matching a pattern reaches the mailbox within a timeout; the pattern
/// is as in [`assert_receive!`].
///
/// ```text
/// refute_receive!(mailbox, [as TYPE,] PATTERN [if GUARD] [, TIMEOUT])
/// ```
///
/// It waits the whole timeout (default
/// [`DEFAULT_REFUTE_TIMEOUT`](crate::DEFAULT_REFUTE_TIMEOUT), 100 ms) unless a match comes.
/// Messages that do not match stay in the mailbox. A probe that has exited receives nothing
/// more, so the refutation holds.
///
/// # Panics
/// If a matching message arrives, showing it and the rest of the mailbox.
#[macro_export]
macro_rules! refute_receive {
    ($mailbox:expr, as $t:ty, $p:pat $(if $guard:expr)? $(, $timeout:expr)?) => {
        $crate::__refute_receive!(
            "refute_receive!", ($mailbox), ($t), ($p), [$($guard)?],
            [$($timeout)?], $crate::DEFAULT_REFUTE_TIMEOUT
        )
    };
    ($mailbox:expr, $p:pat $(if $guard:expr)? $(, $timeout:expr)?) => {
        $crate::__refute_receive!(
            "refute_receive!", ($mailbox), (_), ($p), [$($guard)?],
            [$($timeout)?], $crate::DEFAULT_REFUTE_TIMEOUT
        )
    };
}

/// [`refute_receive!`] that does not wait: no matching message may be in the mailbox now,
/// as ExUnit's `refute_received`.
///
/// # Panics
/// As [`refute_receive!`].
#[macro_export]
macro_rules! refute_received {
    ($mailbox:expr, as $t:ty, $p:pat $(if $guard:expr)?) => {
        $crate::__refute_receive!(
            "refute_received!", ($mailbox), ($t), ($p), [$($guard)?],
            [], ::std::time::Duration::ZERO
        )
    };
    ($mailbox:expr, $p:pat $(if $guard:expr)?) => {
        $crate::__refute_receive!(
            "refute_received!", ($mailbox), (_), ($p), [$($guard)?],
            [], ::std::time::Duration::ZERO
        )
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __assert_receive {
    ($name:literal, ($mailbox:expr), ($t:ty), ($p:pat), [$($guard:expr)?], [$($out:expr)?], [$($timeout:expr)?]) => {{
        let inbox = $crate::__private::inbox(&$mailbox);
        let timeout: ::std::time::Duration = {
            let given: ::core::option::Option<::std::time::Duration> =
                ::core::option::Option::None $(.or(::core::option::Option::Some($timeout)))?;
            given.unwrap_or($crate::DEFAULT_RECEIVE_TIMEOUT)
        };
        #[allow(unused_variables, clippy::redundant_pattern_matching)]
        let matcher = $crate::__private::matcher::<$t, _>(
            |decoded| ::core::matches!(decoded, ::core::option::Option::Some($p) $(if $guard)?),
        );
        match inbox.take(|m| matcher.matches(m), timeout).await {
            ::core::result::Result::Ok(message) => {
                $crate::__assert_receive!(@out matcher, message, ($p), [$($out)?])
            }
            ::core::result::Result::Err(missed) => $crate::__private::missed(
                $name,
                inbox,
                ::core::stringify!($p $(if $guard)?),
                timeout,
                &matcher,
                missed,
            ),
        }
    }};
    (@out $matcher:ident, $message:ident, ($p:pat), []) => {
        $matcher.decode(&$message)
    };
    (@out $matcher:ident, $message:ident, ($p:pat), [$out:expr]) => {
        match ::core::option::Option::Some($matcher.decode(&$message)) {
            #[allow(unused_variables)]
            ::core::option::Option::Some($p) => $out,
            _ => ::core::unreachable!("a message that matched matches again"),
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __refute_receive {
    ($name:literal, ($mailbox:expr), ($t:ty), ($p:pat), [$($guard:expr)?], [$($timeout:expr)?], $default:expr) => {{
        let inbox = $crate::__private::inbox(&$mailbox);
        let timeout: ::std::time::Duration = {
            let given: ::core::option::Option<::std::time::Duration> =
                ::core::option::Option::None $(.or(::core::option::Option::Some($timeout)))?;
            given.unwrap_or($default)
        };
        #[allow(unused_variables, clippy::redundant_pattern_matching)]
        let matcher = $crate::__private::matcher::<$t, _>(
            |decoded| ::core::matches!(decoded, ::core::option::Option::Some($p) $(if $guard)?),
        );
        if let ::core::result::Result::Ok(message) = inbox.take(|m| matcher.matches(m), timeout).await {
            $crate::__private::refuted($name, inbox, ::core::stringify!($p $(if $guard)?), timeout, &message);
        }
    }};
}

/// A pattern's test, tied to the type it decodes messages as.
#[doc(hidden)]
pub struct Matcher<T, F> {
    test: F,
    decodes_as: PhantomData<fn() -> T>,
}

#[doc(hidden)]
pub fn matcher<T: Receive, F: Fn(Option<T>) -> bool>(test: F) -> Matcher<T, F> {
    Matcher {
        test,
        decodes_as: PhantomData,
    }
}

impl<T: Receive, F: Fn(Option<T>) -> bool> Matcher<T, F> {
    #[doc(hidden)]
    pub fn matches(&self, message: &Message) -> bool {
        (self.test)(T::receive(message))
    }

    /// A message that matched, decoded again for what the macro returns.
    #[doc(hidden)]
    pub fn decode(&self, message: &Message) -> T {
        T::receive(message).expect("a message that matched decodes again")
    }

    fn mismatch(&self, message: &Message) -> Option<String> {
        T::mismatch(message)
    }
}

#[doc(hidden)]
pub fn inbox<M: Mailbox + ?Sized>(mailbox: &M) -> &Inbox {
    mailbox.inbox()
}

#[doc(hidden)]
#[track_caller]
pub fn missed<T: Receive, F: Fn(Option<T>) -> bool>(
    name: &str,
    inbox: &Inbox,
    pattern: &str,
    timeout: Duration,
    matcher: &Matcher<T, F>,
    missed: Missed,
) -> ! {
    let (headline, exited) = match &missed {
        Missed::Timeout if timeout.is_zero() => (
            format!(
                "{name}: no message matching `{pattern}` is in {}'s mailbox",
                inbox.owner()
            ),
            None,
        ),
        Missed::Timeout => (
            format!(
                "{name}: no message matching `{pattern}` reached {} within {timeout:?}",
                inbox.owner()
            ),
            None,
        ),
        Missed::Exited(reason) => (
            format!(
                "{name}: no message matching `{pattern}` reached {}, which exited",
                inbox.owner()
            ),
            Some(reason),
        ),
    };
    panic!(
        "{}",
        inbox.report(&headline, |m| matcher.mismatch(m), exited)
    )
}

#[doc(hidden)]
#[track_caller]
pub fn refuted(
    name: &str,
    inbox: &Inbox,
    pattern: &str,
    timeout: Duration,
    message: &Message,
) -> ! {
    let within = if timeout.is_zero() {
        String::new()
    } else {
        format!(" within {timeout:?}")
    };
    let headline = format!(
        "{name}: {} received a message matching `{pattern}`{within}: {message}",
        inbox.owner()
    );
    panic!("{}", inbox.report(&headline, |_| None, None))
}
