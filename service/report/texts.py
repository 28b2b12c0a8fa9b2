"""Every label of the report in English and Vietnamese. A label missing in one language is a
test failure, not a blank cell: the report goes to the authority in Vietnamese and to the
park's partners in English, from the same figures."""

from __future__ import annotations

LANGS = ("en", "vi")

# (section, item) -> (en, vi); item "" is the section's heading
LABELS: dict[tuple[str, str], tuple[str, str]] = {
    ("meta", ""): ("Report", "Báo cáo"),
    ("meta", "park"): ("Park", "Khu công nghiệp"),
    ("meta", "period"): ("Period", "Kỳ báo cáo"),
    ("meta", "first_day"): ("First day", "Ngày đầu"),
    ("meta", "last_day"): ("Last day", "Ngày cuối"),
    ("meta", "tenants"): ("Tenants in the park", "Số doanh nghiệp trong khu"),
    ("stages", ""): ("Exchanges by stage at the period's end", "Trao đổi theo giai đoạn cuối kỳ"),
    ("stages", "identified"): ("Identified", "Đã xác định"),
    ("stages", "screened"): ("Screened", "Đã sàng lọc"),
    ("stages", "under_study"): ("Under study", "Đang nghiên cứu"),
    ("stages", "agreed"): ("Agreed", "Đã thỏa thuận"),
    ("stages", "operating"): ("Operating", "Đang vận hành"),
    ("stages", "verified"): ("Verified", "Đã kiểm chứng"),
    ("stages", "rejected"): ("Rejected", "Bị loại"),
    ("stages", "ended"): ("Ended", "Đã kết thúc"),
    ("exchanges", ""): ("Exchanges operating in the period", "Các trao đổi vận hành trong kỳ"),
    ("exchanges", "quantity"): ("Quantity exchanged", "Lượng trao đổi"),
    ("exchanges", "coverage"): ("Hours with metered data", "Tỷ lệ giờ có số liệu đo"),
    ("exchanges", "gap_days"): ("Days with gaps", "Số ngày thiếu số liệu"),
    ("exchanges", "disagreeing_days"): (
        "Days the two sides' meters disagree",
        "Số ngày đồng hồ hai bên lệch nhau",
    ),
    ("exchanges", "park_vnd"): ("Savings for the park", "Tiết kiệm của toàn khu"),
    ("exchanges", "supplier_vnd"): ("Supplier's savings", "Tiết kiệm của bên cung cấp"),
    ("exchanges", "receiver_vnd"): ("Receiver's savings", "Tiết kiệm của bên nhận"),
    ("exchanges", "water_m3"): ("Water reused", "Nước tái sử dụng"),
    ("exchanges", "co2e_t"): ("CO2e avoided", "CO2e tránh được"),
    ("exchanges", "landfill_t"): ("Kept out of landfill", "Chất thải không phải chôn lấp"),
    ("exchanges", "projected_quantity"): ("Projected quantity", "Lượng dự kiến"),
    ("exchanges", "realised_share"): ("Realised / projected", "Thực tế / dự kiến"),
    ("parties", ""): ("Realised savings by tenant", "Tiết kiệm thực tế theo doanh nghiệp"),
    ("parties", "savings_vnd"): ("Realised savings", "Tiết kiệm thực tế"),
    ("park", ""): ("The park", "Toàn khu"),
    ("park", "park_vnd"): ("Realised savings for the park", "Tiết kiệm thực tế của toàn khu"),
    ("park", "water_m3"): ("Water reused", "Nước tái sử dụng"),
    ("park", "co2e_t"): ("CO2e avoided", "CO2e tránh được"),
    ("park", "landfill_t"): ("Kept out of landfill", "Chất thải không phải chôn lấp"),
    ("park", "operating_exchanges"): ("Exchanges operating", "Số trao đổi vận hành"),
    ("park", "participating_tenants"): (
        "Tenants in at least one operating exchange",
        "Doanh nghiệp tham gia ít nhất một trao đổi đang vận hành",
    ),
    ("park", "participation_share"): ("Participation", "Tỷ lệ tham gia"),
    ("park", "projected_park_vnd"): (
        "Projected savings for the park (frozen baselines)",
        "Tiết kiệm dự kiến của toàn khu (đường cơ sở đã chốt)",
    ),
    ("park", "realised_share_vnd"): (
        "Realised / projected savings",
        "Tiết kiệm thực tế / dự kiến",
    ),
    ("criteria", ""): ("Against the criteria", "Đối chiếu với các tiêu chí"),
}

UI: dict[str, tuple[str, str]] = {
    "title": ("Industrial symbiosis report", "Báo cáo cộng sinh công nghiệp"),
    "item": ("Item", "Mục"),
    "value": ("Value", "Giá trị"),
    "unit": ("Unit", "Đơn vị"),
    "party": ("Tenant", "Doanh nghiệp"),
    "exchange": ("Exchange", "Trao đổi"),
    "source": ("Source of the figure", "Nguồn số liệu"),
    "criterion": ("Criterion", "Tiêu chí"),
    "reference": ("Provision", "Điều khoản"),
    "status": ("Text", "Văn bản"),
    "known": ("What is known", "Điều đã biết"),
    "not_measurable": ("not measurable from meters", "không đo được từ đồng hồ"),
    "verified": ("verified", "đã kiểm chứng"),
    "partly_verified": ("partly verified", "kiểm chứng một phần"),
    "unverified": ("not verified", "chưa kiểm chứng"),
    "decree_35_2022": (
        "Decree 35/2022/ND-CP, Art. 37: eco-industrial park criteria",
        "Nghị định 35/2022/NĐ-CP, Điều 37: tiêu chí khu công nghiệp sinh thái",
    ),
    "circular_05_2025": (
        "Circular 05/2025/TT-BKHDT: industrial symbiosis",
        "Thông tư 05/2025/TT-BKHĐT: cộng sinh công nghiệp",
    ),
    "ief_v2": (
        "International Framework for Eco-Industrial Parks v2.0",
        "Khung quốc tế về khu công nghiệp sinh thái, phiên bản 2.0",
    ),
    "chart_daily": (
        "Savings for the park per day (VND)",
        "Tiết kiệm của toàn khu theo ngày (đồng)",
    ),
    "chart_projection": (
        "Realised against projected quantity, per exchange",
        "Lượng thực tế so với dự kiến, theo trao đổi",
    ),
    "realised": ("realised", "thực tế"),
    "projected": ("projected", "dự kiến"),
    "sources": ("Sources", "Nguồn"),
    "accessed": ("read on", "truy cập ngày"),
    "once": (
        "The park's savings are computed once per exchange; each tenant's savings are its"
        " share of them and are never added on top.",
        "Tiết kiệm của toàn khu được tính một lần cho mỗi trao đổi; tiết kiệm của từng doanh"
        " nghiệp là phần chia của con số đó, không bao giờ cộng thêm vào.",
    ),
    "method": (
        "Realised savings are measured at each exchange's boundary (IPMVP Option B): hours"
        " without metered data are gaps, not estimates.",
        "Tiết kiệm thực tế được đo tại ranh giới của từng trao đổi (IPMVP phương án B): giờ"
        " không có số liệu đo là khoảng trống, không được ước tính.",
    ),
    "no_days": (
        "No verified days in this period.",
        "Không có ngày nào được kiểm chứng trong kỳ này.",
    ),
}


# units that are words; symbols (VND, m3, t, tCO2e) read the same in both languages
UNITS: dict[str, tuple[str, str]] = {
    "exchanges": ("exchanges", "trao đổi"),
    "tenants": ("tenants", "doanh nghiệp"),
    "days": ("days", "ngày"),
}


def unit_label(unit: str, lang: str) -> str:
    en, vi = UNITS.get(unit, (unit, unit))
    return vi if lang == "vi" else en


def label(section: str, item: str, lang: str) -> str:
    en, vi = LABELS[(section, item)]
    return vi if lang == "vi" else en


def ui(key: str, lang: str) -> str:
    en, vi = UI[key]
    return vi if lang == "vi" else en
