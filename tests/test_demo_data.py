from models import ApprovalStatus, Category, ServicemanProfile, User
from models.demo_data import CATEGORIES, SERVICEMEN, load_demo_data


def test_demo_data_loads_once_and_servicemen_are_bookable(settings):
    load_demo_data(settings)
    load_demo_data(settings)  # `make run` seeds on every start

    assert Category.select().count() == len(CATEGORIES)
    assert User.select().where(User.role == "admin").count() == 1
    approved = ServicemanProfile.select().where(ServicemanProfile.approval_status == ApprovalStatus.APPROVED)
    assert approved.count() == len(SERVICEMEN)
