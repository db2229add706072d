//! rkyv support for the event model's own text types: each archives exactly as a
//! `String` does (an `ArchivedString`), so the log's bytes do not depend on how
//! the text is held in memory.

/// Implements `Archive`, `Serialize` and `Deserialize` (from `ArchivedString`)
/// for `$ty`, given its `as_str(&self) -> &str` and a `fn(&str) -> $ty`.
macro_rules! archive_as_string {
    ($ty:ty, $from_str:expr) => {
        impl rkyv::Archive for $ty {
            type Archived = rkyv::string::ArchivedString;
            type Resolver = rkyv::string::StringResolver;

            fn resolve(&self, resolver: Self::Resolver, out: rkyv::Place<Self::Archived>) {
                rkyv::string::ArchivedString::resolve_from_str(self.as_str(), resolver, out);
            }
        }

        impl<S: rkyv::rancor::Fallible + ?Sized> rkyv::Serialize<S> for $ty
        where
            S::Error: rkyv::rancor::Source,
            str: rkyv::SerializeUnsized<S>,
        {
            fn serialize(&self, serializer: &mut S) -> Result<Self::Resolver, S::Error> {
                rkyv::string::ArchivedString::serialize_from_str(self.as_str(), serializer)
            }
        }

        impl<D: rkyv::rancor::Fallible + ?Sized> rkyv::Deserialize<$ty, D>
            for rkyv::string::ArchivedString
        {
            fn deserialize(&self, _: &mut D) -> Result<$ty, D::Error> {
                Ok($from_str(self.as_str()))
            }
        }
    };
}

pub(crate) use archive_as_string;

/// Archives `value`, checks its bytes are those of `text` as a `String`, and
/// returns it read back from the archive.
#[cfg(test)]
pub(crate) fn round_trip_as_string<T>(value: &T, text: &str) -> T
where
    T: rkyv::Archive<Archived = rkyv::string::ArchivedString>
        + for<'a> rkyv::Serialize<
            rkyv::api::high::HighSerializer<
                rkyv::util::AlignedVec,
                rkyv::ser::allocator::ArenaHandle<'a>,
                rkyv::rancor::Error,
            >,
        >,
    rkyv::string::ArchivedString:
        rkyv::Deserialize<T, rkyv::api::high::HighDeserializer<rkyv::rancor::Error>>,
{
    let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(value).unwrap();
    let owned = rkyv::to_bytes::<rkyv::rancor::Error>(&text.to_owned()).unwrap();
    assert_eq!(bytes.as_slice(), owned.as_slice(), "{text:?}");
    let archived =
        rkyv::access::<rkyv::string::ArchivedString, rkyv::rancor::Error>(&bytes).unwrap();
    rkyv::deserialize::<T, rkyv::rancor::Error>(archived).unwrap()
}
